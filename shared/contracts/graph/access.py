"""The graph's access rules as other services see them: field masks and scope rules, per org and role.

- A field mask hides a property of a thing type from a role on every read: `mask` shows `"***"`,
  `redact` leaves the field out, `allow` is an exception to a broader mask. Among the masks that
  match a field, the highest priority decides; at that priority the most restrictive wins
  (redact > mask > allow), as a deny beats an allow among policies (`shared.kernel.rbac`).
- A scope rule limits which things of a type a role sees: `own` (the actor's own thing, the things
  it `owns`, the things `created_by` it), `connected` (the things linked to the actor's thing by a
  named connection type, either direction) or `all`. A role's allow rules for a type add up (a thing
  is visible when any admits it); a role with no allow rule for a type sees all of it; a `deny` rule
  hides what it matches whatever allows it.

`set` is an upsert on the rule's natural key, and the rule id is derived from it, so installing the
same rules twice (a pack) changes nothing. Managing rules is `access_rules:update` / `access_rules:delete`
(org owners); `graph.access.visible` is how another service (knowledge's search) asks, in one call,
which cited things and fields the caller may see.
"""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, StringConstraints, model_validator

from shared.kernel import subjects
from shared.kernel.envelope import Payload, register_message
from shared.kernel.errors import NotFound

RoleName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,39}$")]
"""A built-in or org-defined role (tenancy's role names); system work (`service:<name>`) is never named."""
ThingTypeOrAny = Annotated[str, StringConstraints(pattern=r"^(\*|[a-z][a-z0-9_]{0,60})$")]
FieldPath = Annotated[str, StringConstraints(pattern=r"^properties(\.([A-Za-z_][A-Za-z0-9_]*|\*)){1,8}$")]
"""`properties.email`, `properties.address.city`, `properties.*` (a `*` segment matches any one key);
a mask on a field covers everything under it."""
PropertyPath = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,7}$")]
MaskMode = Literal["mask", "redact", "allow"]
ScopeKind = Literal["own", "connected", "all"]
Effect = Literal["allow", "deny"]


class AccessRuleNotFound(NotFound):
    code = "access_rule_not_found"


class FieldMaskSet(Payload):
    role: RoleName
    thing_type: ThingTypeOrAny = Field(description="A thing type, or `*` for every type.")
    field: FieldPath
    mode: MaskMode = "mask"
    priority: int = Field(0, ge=-1000, le=1000)


class FieldMask(BaseModel):
    id: UUID
    role: str
    thing_type: str
    field: str
    mode: MaskMode
    priority: int
    created_at: datetime
    updated_at: datetime


class ScopeRuleSet(Payload):
    role: RoleName
    thing_type: ThingTypeOrAny = Field(description="A thing type, or `*` for every type.")
    rule: ScopeKind
    connection_type: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,60}$")] | None = Field(
        None, description="For `connected`: the connection type linking the thing to the actor's thing.")
    effect: Effect = "allow"

    @model_validator(mode="after")
    def _connection_type_iff_connected(self) -> "ScopeRuleSet":
        if (self.rule == "connected") != (self.connection_type is not None):
            raise ValueError("connection_type is required for a `connected` rule and only for it")
        return self


class ScopeRule(BaseModel):
    id: UUID
    role: str
    thing_type: str
    rule: ScopeKind
    connection_type: str | None = None
    effect: Effect
    created_at: datetime
    updated_at: datetime


class AccessRuleTarget(Payload):
    id: UUID


class AccessRuleFilter(Payload):
    role: RoleName | None = None
    thing_type: ThingTypeOrAny | None = None


class FieldMasks(BaseModel):
    masks: list[FieldMask]


class ScopeRules(BaseModel):
    rules: list[ScopeRule]


class RuleRemoved(BaseModel):
    id: UUID


class VisibleQuery(Payload):
    thing_ids: list[UUID] = Field(min_length=1, max_length=1000)
    fields: list[PropertyPath] = Field(default_factory=list, max_length=100, description=(
        "Property paths (without `properties.`) whose masking the caller wants to know, e.g. a search hit's "
        "`source_field`."))


class Visibility(BaseModel):
    """Which of the asked things the caller may see, and per visible thing which asked fields it may not."""

    visible: list[UUID]
    hidden_fields: dict[UUID, list[str]] = Field(default_factory=dict)


def _message(type_: str, verb: str, payload: type[Payload], result: type[BaseModel], permission: str | None) -> Any:
    return register_message(type_, subjects.command("graph", verb), payload, result, permission=permission)


MASK_SET = _message("graph.access.mask.set", "access.mask.set", FieldMaskSet, FieldMask, "access_rules:update")
MASK_REMOVE = _message("graph.access.mask.remove", "access.mask.remove", AccessRuleTarget, RuleRemoved,
                       "access_rules:delete")
MASK_LIST = _message("graph.access.mask.list", "access.mask.list", AccessRuleFilter, FieldMasks, "access_rules:list")
SCOPE_SET = _message("graph.access.scope.set", "access.scope.set", ScopeRuleSet, ScopeRule, "access_rules:update")
SCOPE_REMOVE = _message("graph.access.scope.remove", "access.scope.remove", AccessRuleTarget, RuleRemoved,
                        "access_rules:delete")
SCOPE_LIST = _message("graph.access.scope.list", "access.scope.list", AccessRuleFilter, ScopeRules, "access_rules:list")
VISIBLE = _message("graph.access.visible", "access.visible", VisibleQuery, Visibility, None)
"""Asked by services (knowledge's search), never through the gateway; it answers by the caller's own rules."""
