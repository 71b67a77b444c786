"""What knowledge asks of the graph over the bus: whether a thing is live, and its fields.

Asked as the work at hand: a request as its caller (who must be able to see the thing they
label, link or ingest), background work (ingestion jobs) as the service's own identity, which
may read things and nothing else (`grants` in app.py), on behalf of the event's actor.
"""

import re
from typing import Any
from uuid import UUID

from shared.contracts.graph import THING_GET, Thing
from shared.contracts.graph.access import VISIBLE
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


_PROPERTY_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,7}$")


async def visible_hits(ctx: WorkContext, hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The search hits the caller may see, in one call to the graph: a hit citing a thing out of the caller's
    scope goes, and so does one whose text came from a field the caller's masks hide (the snippet is that field)."""
    cited = [h["item"] for h in hits if h["item"]["source_thing_id"] is not None]
    if not cited:
        return hits
    ids = list(dict.fromkeys(item["source_thing_id"] for item in cited))
    fields = sorted({f for item in cited if (f := item["source_field"]) and _PROPERTY_PATH.match(f)})[:100]
    answer = await ctx.call(VISIBLE, {"thing_ids": ids, "fields": fields})
    visible = set(answer.visible)
    return [
        h for h in hits
        if (thing_id := h["item"]["source_thing_id"]) is None
        or (thing_id in visible and h["item"]["source_field"] not in answer.hidden_fields.get(thing_id, ()))
    ]
