"""The SDK over NATS: each request an envelope stamped with the verified key's auth context.

The key is verified once, by tenancy (`tenancy.key.verify`), or with `org` by
`tenancy.key.act_in_org` (a platform owner acting in another org, logged there as cross-org
access). Nothing here trusts an org id it was merely given: the auth context is tenancy's answer.
`over_bus(bus, ctx)` wraps an already-verified context (a service's or a test's own).
"""

from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from pydantic import BaseModel

from shared.contracts.tenancy import VerifiedKey
from shared.kernel import subjects
from shared.kernel.envelope import AuthContext, Envelope, MessageSpec, Protocol
from shared.kernel.errors import OneError, Unavailable
from shared.runtime.client import BusClient
from shared.tools.sdk.connect import key_verification
from shared.tools.sdk.transport import Payload, as_json

if TYPE_CHECKING:
    from shared.kernel.settings import Settings
    from shared.tools.sdk.connect import ClientSettings

R = TypeVar("R", bound=BaseModel)


class BusTransport:
    kind = "bus"

    def __init__(self, bus: BusClient, ctx: AuthContext, *, verified: VerifiedKey | None = None,
                 protocol: Protocol = Protocol.NATIVE, owns_bus: bool = False) -> None:
        self.bus = bus
        self.ctx = ctx
        self.verified = verified
        self.protocol = protocol
        self._owns_bus = owns_bus

    @classmethod
    async def open(cls, settings: "Settings | ClientSettings", key: str, *, org: UUID | None = None, name: str = "one-sdk") -> "BusTransport":
        bus = await BusClient.connect(settings, name=name)
        try:
            verified = await bus.request(*key_verification(key, org))
        except BaseException:
            await bus.close()
            raise
        return cls(bus, verified.auth_context(), verified=verified, owns_bus=True)

    async def request(self, spec: MessageSpec[Any, R], payload: Payload = None, *, timeout: float | None = None,
                      retry: bool = False) -> R:
        """One envelope carrying the caller's auth; with `retry`, sent again once if the service did not
        answer (the same envelope id: a service that keys on it does the work once)."""
        ctx = self.ctx
        envelope = Envelope(
            protocol=self.protocol, type=spec.type, org_id=ctx.org_id, actor_id=ctx.actor_id, role=ctx.role,
            permissions=ctx.permissions, scopes=ctx.scopes, payload=as_json(payload),
        )
        try:
            return await self.bus.send(spec, envelope, timeout=timeout)
        except Unavailable:
            if not retry:
                raise
            return await self.bus.send(spec, envelope, timeout=timeout)

    async def whoami(self) -> VerifiedKey:
        if self.verified is None:
            raise OneError("this client was given an auth context, not a key: there is no key to describe")
        return self.verified

    async def health(self, timeout: float) -> dict[str, Any]:
        """Every service's health report (or the error asking it), in parallel."""
        import asyncio

        from shared.runtime.service import health_spec  # the runtime's own spec; loaded only when asked

        async def one(name: str) -> Any:
            try:
                return await self.bus.request(health_spec(name), timeout=timeout)
            except OneError as error:
                return error

        results = await asyncio.gather(*(one(name) for name in subjects.SERVICES))
        return dict(zip(subjects.SERVICES, results, strict=True))

    async def close(self) -> None:
        if self._owns_bus:
            await self.bus.close()
