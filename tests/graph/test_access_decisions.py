"""The mask decision and the scope condition, without infrastructure: priorities, ties, `*` segments, nesting,
and which filters a mask forbids (tests/graph/test_access_rules.py checks them on the real reads)."""

from datetime import UTC, datetime
from uuid import uuid4

from services.graph.access import AccessView, MaskRule, RoleRules, ScopeRule, decide
from services.graph.repository_access import scope_condition
from shared.contracts.graph import Thing


def _view(*masks: MaskRule, scopes: tuple[ScopeRule, ...] = ()) -> AccessView:
    return AccessView(RoleRules(masks, scopes), uuid4())


def _thing(properties: dict) -> Thing:
    now = datetime.now(UTC)
    return Thing(id=uuid4(), type="creator", name="A", properties=properties, status="active", version=1,
                 created_at=now, updated_at=now)


def test_priority_decides_and_a_tie_goes_to_the_stricter() -> None:
    every = MaskRule("creator", ("*",), "mask", 0)
    assert decide((every, MaskRule("creator", ("bio",), "allow", 0)), ("bio",)) == "mask"
    assert decide((every, MaskRule("creator", ("bio",), "allow", 1)), ("bio",)) is None
    assert decide((every, MaskRule("creator", ("bio",), "redact", 0)), ("bio",)) == "redact"
    assert decide((every,), ("bio", "long")) is None  # `*` is one segment


def test_masks_apply_at_any_depth_and_cover_what_is_below() -> None:
    view = _view(MaskRule("creator", ("brandColors", "primary"), "mask", 0), MaskRule("*", ("address",), "redact", 0),
                 MaskRule("course", ("email",), "mask", 0))
    shown = view.mask(_thing({"brandColors": {"primary": "#f00", "accent": "#0f0"}, "address": {"city": "X"},
                              "email": "a@b.c"})).properties
    assert shown == {"brandColors": {"primary": "***", "accent": "#0f0"}, "email": "a@b.c"}


def test_a_filter_may_not_touch_a_hidden_field_above_at_or_below_it() -> None:
    view = _view(MaskRule("creator", ("brandColors", "primary"), "mask", 0), MaskRule("creator", ("bio",), "allow", 0))
    assert view.hidden("creator", ("brandColors", "primary"))
    assert view.hidden("creator", ("brandColors",))  # a filter on the parent would reveal the child
    assert view.hidden(None, ("brandColors", "primary"))  # no type: any type the rules name
    assert not view.hidden("creator", ("bio",)) and not view.hidden("course", ("brandColors",))


def test_the_scope_condition_combines_allows_and_lets_deny_win() -> None:
    actor = uuid4()
    assert scope_condition((), actor, "t") is None
    rules = (ScopeRule("course", "connected", "enrolled_in", "allow"), ScopeRule("course", "own", None, "allow"),
             ScopeRule("*", "all", None, "deny"))
    sql = scope_condition(rules, actor, "t")
    assert sql is not None and sql.text.count(" OR ") >= 2 and "NOT (" in sql.text
    assert sql.params["acc_c0"] == "enrolled_in" and sql.params["acc_types"] == ["course"]
    only_deny = scope_condition((ScopeRule("course", "all", None, "deny"),), actor, "live")
    assert only_deny is not None and "acc_actor" not in only_deny.params and "live.type" in only_deny.text
