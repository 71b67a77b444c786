"""`One`: the platform from Python, over the bus or over HTTP, always as a verified credential.

    import asyncio
    from shared.tools.sdk import One

    async def main() -> None:
        async with await One.connect() as one:
            thing = await one.things.create("blog_post", "Hello")
            await one.events.publish("content_viewed", target_id=thing.id)

    asyncio.run(main())

`One.connect()` finds the platform (see `connect.py`); `await one.request(SPEC, payload)` sends any
contract message and returns its result model, or raises the contract's error class, on both
transports. The namespaces (`things`, `connections`, `events`, `knowledge`, `orgs`, `members`,
`keys`, `roles`, `quotas`, `agents`) are thin typed methods over that one call.
"""

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from pydantic import BaseModel

from shared.kernel.envelope import AuthContext, MessageSpec, Protocol
from shared.tools.sdk.transport import Payload, Transport

if TYPE_CHECKING:  # each namespace loads its service's contract when first used: `one whoami` loads none of them
    from shared.contracts.tenancy import Person, VerifiedKey
    from shared.tools.sdk.agents import Agents
    from shared.tools.sdk.events import Events
    from shared.tools.sdk.graph import Connections, Things
    from shared.tools.sdk.knowledge import Knowledge
    from shared.tools.sdk.tenancy import ApiKeys, Memberships, Orgs, QuotasAndLimits, RolesAndPolicies

R = TypeVar("R", bound=BaseModel)


class Lazy:
    """A namespace made on first use, from `shared.tools.sdk.<module>:<class>`: its contract loads only then."""

    def __init__(self, target: str) -> None:
        self.module, _, self.cls = target.partition(":")

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, one: "One | None", owner: type | None = None) -> Any:
        if one is None:
            return self
        namespace = getattr(importlib.import_module(f"shared.tools.sdk.{self.module}"), self.cls)(one.transport)
        one.__dict__[self.name] = namespace  # found there from now on: a descriptor without __set__ yields to it
        return namespace


class One:
    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    things: "Things" = Lazy("graph:Things")  # type: ignore[assignment]
    connections: "Connections" = Lazy("graph:Connections")  # type: ignore[assignment]
    events: "Events" = Lazy("events:Events")  # type: ignore[assignment]
    knowledge: "Knowledge" = Lazy("knowledge:Knowledge")  # type: ignore[assignment]
    orgs: "Orgs" = Lazy("tenancy:Orgs")  # type: ignore[assignment]
    members: "Memberships" = Lazy("tenancy:Memberships")  # type: ignore[assignment]
    keys: "ApiKeys" = Lazy("tenancy:ApiKeys")  # type: ignore[assignment]
    roles: "RolesAndPolicies" = Lazy("tenancy:RolesAndPolicies")  # type: ignore[assignment]
    quotas: "QuotasAndLimits" = Lazy("tenancy:QuotasAndLimits")  # type: ignore[assignment]
    agents: "Agents" = Lazy("agents:Agents")  # type: ignore[assignment]

    @classmethod
    async def connect(
        cls, url: str | None = None, key: str | None = None, *, nats_url: str | None = None,
        data_dir: str | Path | None = None, timeout: float | None = None, org: UUID | str | None = None,
        name: str = "one-sdk",
    ) -> "One":
        """Connect and verify the key. `org`: act in another org, as a platform owner (bus only; logged there)."""
        from shared.tools.sdk.connect import open_transport

        org_id = UUID(str(org)) if org is not None else None
        return cls(await open_transport(url=url, key=key, nats_url=nats_url, data_dir=data_dir, timeout=timeout,
                                        org=org_id, name=name))

    @classmethod
    def over_bus(cls, bus: Any, ctx: AuthContext, *, protocol: Protocol = Protocol.NATIVE) -> "One":
        """On a bus client and an auth context the caller already holds (verified, or a test's own)."""
        from shared.tools.sdk.bus import BusTransport

        return cls(BusTransport(bus, ctx, protocol=protocol))

    @property
    def kind(self) -> str:
        """`bus` or `http`."""
        return self.transport.kind

    async def request(self, spec: MessageSpec[Any, R], payload: Payload = None, *, timeout: float | None = None) -> R:
        """Any contract message: its result model back, or its typed error raised."""
        return await self.transport.request(spec, payload, timeout=timeout)

    async def whoami(self) -> "VerifiedKey":
        """What the key stands for: org, actor, role, scopes."""
        return await self.transport.whoami()

    async def me(self) -> "Person":
        from shared.contracts.tenancy import PERSON_ME

        return await self.request(PERSON_ME)

    async def status(self, timeout: float = 2.0) -> dict[str, Any]:
        """Each service's `HealthReport`, or the `OneError` that asking it raised."""
        return await self.transport.health(timeout)

    async def close(self) -> None:
        await self.transport.close()

    async def __aenter__(self) -> "One":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()
