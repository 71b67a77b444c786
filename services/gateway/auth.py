"""Who is calling: the API key from `Authorization: Bearer` or `X-API-Key`, verified by tenancy.

The verified auth context is what every bus request of the route carries; the org in it is the
only org the gateway ever acts for (nothing in a URL or body can name another). Answers of
`tenancy.key.verify` are kept for `gateway_key_cache_ttl` seconds, refusals too, so a replica
asks tenancy about a key at most once per TTL and a revoked key stops working within it.
Keys are remembered by their SHA-256, never as the secret itself.

Once the key is known, the request is counted against its org's and its own rate windows
(`limits.py`, with the rules the verified key carries): over a limit is 429 before any route runs.
A route that sends no bus request declares the permission it needs with `requires(...)`; the
others are checked against the spec they send (`edge.py`).
"""

import asyncio
import hashlib
import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from services.gateway.edge import current
from services.gateway.limits import RateLimiter, Refused
from shared.contracts.tenancy import VERIFY_KEY, VerifiedKey
from shared.kernel.envelope import AuthContext
from shared.kernel.errors import OneError, Unauthenticated
from shared.kernel.rbac import require
from shared.runtime.client import BusClient

Known = tuple[VerifiedKey, AuthContext]
"""A verified key and the auth context it stands for (made once, when tenancy answers)."""

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer one_...`.")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key, as a header of its own.")


class KeyVerifier:
    """`tenancy.key.verify` behind a small TTL cache; one verification per key at a time."""

    def __init__(self, bus: BusClient, ttl: float, size: int = 10_000) -> None:
        self.bus = bus
        self.ttl = ttl
        self.size = size
        self._known: OrderedDict[bytes, tuple[float, Known | Unauthenticated]] = OrderedDict()
        self._loading: dict[bytes, asyncio.Future[Known | Unauthenticated]] = {}

    async def verify(self, key: str) -> AuthContext:
        return (await self.identify(key))[1]

    async def identify(self, key: str) -> Known:
        digest = hashlib.sha256(key.encode()).digest()
        known = self._known.get(digest)
        if known is not None and known[0] > time.monotonic():
            answer = known[1]
        else:
            answer = await self._load(digest, key)
        if isinstance(answer, Unauthenticated):  # a fresh error each time: a kept one would grow its traceback
            raise OneError.from_payload(answer.to_payload())
        if answer[0].expires_at is not None and answer[0].expires_at <= datetime.now(UTC):  # expired while cached
            raise Unauthenticated("the API key has expired")
        return answer

    async def _load(self, digest: bytes, key: str) -> Known | Unauthenticated:
        """Concurrent first requests with one key share one verification; only answers are kept, not outages."""
        loading = self._loading.get(digest)
        if loading is not None:
            return await asyncio.shield(loading)
        future: asyncio.Future[Known | Unauthenticated] = asyncio.get_running_loop().create_future()
        self._loading[digest] = future
        try:
            try:
                verified: VerifiedKey = await self.bus.request(VERIFY_KEY, {"key": key})
                answer: Known | Unauthenticated = (verified, verified.auth_context())
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

    def _remember(self, digest: bytes, answer: Known | Unauthenticated) -> None:
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
    """The route dependency: the caller's verified auth context, or 401; over a rate limit, 429."""
    key = credentials.credentials if credentials is not None else api_key
    if not key:
        raise Unauthenticated("an API key is required: `Authorization: Bearer <key>` or `X-API-Key: <key>`")
    return await _admitted(request, key)


async def authenticated_if_sent(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    api_key: Annotated[str | None, Depends(api_key_header)],
) -> AuthContext | None:
    """For a route open without a key that acts for the caller when one comes: no key is None, a bad one 401."""
    key = credentials.credentials if credentials is not None else api_key
    if not key:
        return None
    return await _admitted(request, key)


async def _admitted(request: Request, key: str) -> AuthContext:
    """The key's auth context, once its request is counted in the org's and the key's rate windows."""
    verifier: KeyVerifier = request.app.state.keys
    verified, auth = await verifier.identify(key.strip())
    state = current.get()
    if verified.rate_limits:
        limiter: RateLimiter = request.app.state.limiter
        try:
            allowance = limiter.take_request(verified.org_id, verified.key_id, verified.rate_limits)
        except Refused as refused:
            if state is not None:
                state.allowance = refused.allowance
            raise
        if state is not None:
            state.tighten(allowance)
    if state is not None:
        state.org_id, state.key_id, state.rules = verified.org_id, verified.key_id, verified.rate_limits
    return auth


Caller = Annotated[AuthContext, Depends(authenticated)]
OptionalCaller = Annotated[AuthContext | None, Depends(authenticated_if_sent)]


def requires(permission: str) -> Any:
    """The dependency of a route that sends no spec-checked bus request: a caller allowed `resource:action`."""
    resource, _, action = permission.partition(":")

    async def allowed(caller: Caller) -> AuthContext:
        require(caller, resource, action)
        return caller

    return Depends(allowed)
