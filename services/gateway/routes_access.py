"""Access rules over HTTP, with an org owner's API key: `/v1/access/masks` and `/v1/access/scopes`.

Field masks and scope rules per role (shared/contracts/graph/access.py); the graph enforces them on
every read. Setting a rule is an upsert (200 whether it was new or not); each route is one bus request.
"""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from services.gateway.auth import Caller
from services.gateway.routes_graph import READ, WRITE, Bus
from shared.contracts.graph.access import (
    MASK_LIST,
    MASK_REMOVE,
    MASK_SET,
    SCOPE_LIST,
    SCOPE_REMOVE,
    SCOPE_SET,
    FieldMask,
    FieldMasks,
    FieldMaskSet,
    RoleName,
    RuleRemoved,
    ScopeRule,
    ScopeRules,
    ScopeRuleSet,
    ThingTypeOrAny,
)

router = APIRouter(prefix="/v1/access", tags=["access"])


def _filter(role: str | None, thing_type: str | None) -> dict[str, str]:
    return {k: v for k, v in (("role", role), ("thing_type", thing_type)) if v is not None}


@router.get("/masks", responses=READ)
async def list_masks(
    caller: Caller, bus: Bus, role: Annotated[RoleName | None, Query()] = None,
    thing_type: Annotated[ThingTypeOrAny | None, Query()] = None,
) -> FieldMasks:
    return await bus.request(MASK_LIST, _filter(role, thing_type), caller)


@router.post("/masks", responses=WRITE)
async def set_mask(body: FieldMaskSet, caller: Caller, bus: Bus) -> FieldMask:
    """Mask (`***`), redact (leave out) or allow a field of a thing type for a role."""
    return await bus.request(MASK_SET, body, caller)


@router.delete("/masks/{id}", responses=WRITE)
async def remove_mask(id: UUID, caller: Caller, bus: Bus) -> RuleRemoved:
    return await bus.request(MASK_REMOVE, {"id": id}, caller)


@router.get("/scopes", responses=READ)
async def list_scopes(
    caller: Caller, bus: Bus, role: Annotated[RoleName | None, Query()] = None,
    thing_type: Annotated[ThingTypeOrAny | None, Query()] = None,
) -> ScopeRules:
    return await bus.request(SCOPE_LIST, _filter(role, thing_type), caller)


@router.post("/scopes", responses=WRITE)
async def set_scope(body: ScopeRuleSet, caller: Caller, bus: Bus) -> ScopeRule:
    """Limit which things of a type a role sees: `own`, `connected` (by a connection type) or `all`; `deny` wins."""
    return await bus.request(SCOPE_SET, body, caller)


@router.delete("/scopes/{id}", responses=WRITE)
async def remove_scope(id: UUID, caller: Caller, bus: Bus) -> RuleRemoved:
    return await bus.request(SCOPE_REMOVE, {"id": id}, caller)
