"""The graph's access-rule subscribers: field masks and scope rules set, removed, listed, and the visibility question.

A change commits first, then drops the org's rules from every replica's cache (`access.AccessCache.changed`),
so the next read anywhere applies the new rules.
"""


from services.graph import access, service_access
from shared.contracts.graph.access import (
    MASK_LIST,
    MASK_REMOVE,
    MASK_SET,
    SCOPE_LIST,
    SCOPE_REMOVE,
    SCOPE_SET,
    VISIBLE,
    AccessRuleFilter,
    AccessRuleTarget,
    FieldMask,
    FieldMasks,
    FieldMaskSet,
    RuleRemoved,
    ScopeRule,
    ScopeRules,
    ScopeRuleSet,
    Visibility,
    VisibleQuery,
)
from shared.runtime.context import WorkContext
from shared.runtime.handlers import ServiceRouter

router = ServiceRouter("graph")


@router.handler(MASK_SET, transactional=False)
async def set_mask(ctx: WorkContext, payload: FieldMaskSet) -> FieldMask:
    return await access.change(ctx, lambda tx: service_access.set_mask(tx, payload))


@router.handler(MASK_REMOVE, transactional=False)
async def remove_mask(ctx: WorkContext, payload: AccessRuleTarget) -> RuleRemoved:
    return RuleRemoved(id=await access.change(ctx, lambda tx: service_access.remove(tx, "mask", payload.id)))


@router.handler(MASK_LIST)
async def list_masks(ctx: WorkContext, payload: AccessRuleFilter) -> FieldMasks:
    return await service_access.list_masks(ctx, payload)


@router.handler(SCOPE_SET, transactional=False)
async def set_scope(ctx: WorkContext, payload: ScopeRuleSet) -> ScopeRule:
    return await access.change(ctx, lambda tx: service_access.set_scope(tx, payload))


@router.handler(SCOPE_REMOVE, transactional=False)
async def remove_scope(ctx: WorkContext, payload: AccessRuleTarget) -> RuleRemoved:
    return RuleRemoved(id=await access.change(ctx, lambda tx: service_access.remove(tx, "scope", payload.id)))


@router.handler(SCOPE_LIST)
async def list_scopes(ctx: WorkContext, payload: AccessRuleFilter) -> ScopeRules:
    return await service_access.list_scopes(ctx, payload)


@router.handler(VISIBLE)
async def visible(ctx: WorkContext, payload: VisibleQuery) -> Visibility:
    return await service_access.visible(ctx, payload)
