"""What knowledge asks of the graph over the bus: whether a thing is live, and its fields.

A request's own auth context is used when there is one (the caller must be able to see the
thing it labels or ingests). Event-triggered ingestion has no caller: it reads the thing as the
actor of the event, with nothing but `things:read` (`reader`).
"""

from uuid import UUID

from services.graph.models import Thing
from services.graph.schemas import THING_GET
from services.knowledge.errors import ThingNotFound
from shared.runtime.client import BusClient
from shared.kernel.envelope import AuthContext
from shared.kernel.errors import NotFound
from shared.runtime.handlers import RequestContext

SERVICE_ACTOR = UUID("00000000-0000-7000-8000-00000000000b")
"""Acts for knowledge when an event names no actor."""


def reader(org_id: UUID, actor_id: UUID | None) -> AuthContext:
    """The auth context of background work for an org: read things, nothing else."""
    return AuthContext(org_id, actor_id or SERVICE_ACTOR, "service:knowledge", ("allow:things:read:0",), ("things:read",))


async def fetch_thing(bus: BusClient, auth: AuthContext, thing_id: UUID, *, causation_id: UUID | None = None) -> Thing:
    """The live thing, or `ThingNotFound` (deleted, missing, or another org's: the graph does not say which)."""
    try:
        found = await bus.request(THING_GET, {"id": thing_id}, auth, causation_id=causation_id)
    except NotFound:
        raise ThingNotFound(f"no thing {thing_id} in this organization", {"thing_id": str(thing_id)}) from None
    return found.thing


async def live_thing(ctx: RequestContext, thing_id: UUID) -> Thing:
    return await fetch_thing(ctx.runtime.bus, ctx.auth, thing_id, causation_id=ctx.envelope.id)
