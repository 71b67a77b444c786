"""Who is calling: the API key from `Authorization: Bearer` or `X-API-Key`, verified by tenancy.

The verified auth context is what every bus request of the route carries; the org in it is the
only org the gateway ever acts for (nothing in a URL or body can name another). Answers of
`tenancy.key.verify` are kept for `gateway_key_cache_ttl` seconds, refusals too, so a replica
asks tenancy about a key at most once per TTL and a revoked key stops working within it.
Keys are remembered by their SHA-256, never as the secret itself.
"""

import asyncio
import hashlib
import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from shared.contracts.tenancy import VERIFY_KEY, VerifiedKey
from shared.kernel.envelope import AuthContext
from shared.kernel.errors import OneError, Unauthenticated
from shared.runtime.client import BusClient

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer one_...`.")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key, as a header of its own.")


class KeyVerifier:
    """`tenancy.key.verify` behind a small TTL cache; one verification per key at a time."""

    def __init__(self, bus: BusClient, ttl: float, size: int = 10_000) -> None:
        self.bus = bus
        self.ttl = ttl
        self.size = size
        self._known: OrderedDict[bytes, tuple[float, VerifiedKey | Unauthenticated]] = OrderedDict()
        self._loading: dict[bytes, asyncio.Future[VerifiedKey | Unauthenticated]] = {}

    async def verify(self, key: str) -> AuthContext:
        digest = hashlib.sha256(key.encode()).digest()
        known = self._known.get(digest)
        if known is not None and known[0] > time.monotonic():
            answer = known[1]
        else:
            answer = await self._load(digest, key)
        if isinstance(answer, Unauthenticated):  # a fresh error each time: a kept one would grow its traceback
            raise OneError.from_payload(answer.to_payload())
        if answer.expires_at is not None and answer.expires_at <= datetime.now(UTC):  # expired while cached
            raise Unauthenticated("the API key has expired")
        return answer.auth_context()

    async def _load(self, digest: bytes, key: str) -> VerifiedKey | Unauthenticated:
        """Concurrent first requests with one key share one verification; only answers are kept, not outages."""
        loading = self._loading.get(digest)
        if loading is not None:
            return await asyncio.shield(loading)
        future: asyncio.Future[VerifiedKey | Unauthenticated] = asyncio.get_running_loop().create_future()
        self._loading[digest] = future
        try:
            try:
                answer: VerifiedKey | Unauthenticated = await self.bus.request(VERIFY_KEY, {"key": key})
            except Unauthenticated as refused:
                answer = refused
            self._remember(digest, answer)
            future.set_result(answer)
            return answer
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as error:
            future.set_exception(error)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            del self._loading[digest]

    def _remember(self, digest: bytes, answer: VerifiedKey | Unauthenticated) -> None:
        if self.ttl <= 0:
            return
        self._known[digest] = (time.monotonic() + self.ttl, answer)
        self._known.move_to_end(digest)
        while len(self._known) > self.size:
            self._known.popitem(last=False)


async def authenticated(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    api_key: Annotated[str | None, Depends(api_key_header)],
) -> AuthContext:
    """The route dependency: the caller's verified auth context, or 401."""
    key = credentials.credentials if credentials is not None else api_key
    if not key:
        raise Unauthenticated("an API key is required: `Authorization: Bearer <key>` or `X-API-Key: <key>`")
    verifier: KeyVerifier = request.app.state.keys
    return await verifier.verify(key.strip())


async def authenticated_if_sent(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    api_key: Annotated[str | None, Depends(api_key_header)],
) -> AuthContext | None:
    """For a route open without a key that acts for the caller when one comes: no key is None, a bad one 401."""
    key = credentials.credentials if credentials is not None else api_key
    if not key:
        return None
    verifier: KeyVerifier = request.app.state.keys
    return await verifier.verify(key.strip())


Caller = Annotated[AuthContext, Depends(authenticated)]
OptionalCaller = Annotated[AuthContext | None, Depends(authenticated_if_sent)]
