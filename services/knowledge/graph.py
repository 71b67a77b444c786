"""What knowledge asks of the graph over the bus: whether a thing is live, and its fields.

Asked as the work at hand: a request as its caller (who must be able to see the thing they
label, link or ingest), background work (ingestion jobs) as the service's own identity, which
may read things and nothing else (`grants` in app.py), on behalf of the event's actor.
"""

from uuid import UUID

from shared.contracts.graph import THING_GET, Thing
from shared.contracts.knowledge import ThingNotFound
from shared.kernel.errors import NotFound
from shared.runtime.context import WorkContext


async def live_thing(ctx: WorkContext, thing_id: UUID) -> Thing:
    """The live thing, or `ThingNotFound` (deleted, missing, or another org's: the graph does not say which)."""
    try:
        found = await ctx.call(THING_GET, {"id": thing_id})
    except NotFound:
        raise ThingNotFound(f"no thing {thing_id} in this organization", {"thing_id": str(thing_id)}) from None
    return found.thing
