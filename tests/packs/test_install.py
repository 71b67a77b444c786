"""Installing a pack: everything it brings exists once, however often it is installed, and its schemas hold."""

from typing import Any

import asyncpg
import pytest

from shared.contracts.agents import AGENT_GET, PROMPT_LIST
from shared.contracts.graph import (
    IDENTITY_BACKFILL,
    THING_CREATE,
    THING_GET,
    THING_UPDATE,
    InvalidProperties,
    UnknownType,
)
from shared.contracts.graph.access import MASK_LIST
from shared.contracts.graph.schemas import TYPE_SCHEMA_LIST, TYPE_SCHEMA_SET, TypeSchemaOwned
from shared.contracts.tenancy import ORG_GET, ROLE_LIST
from shared.contracts.tenancy.packs import PACK_INSTALL, PACK_LIST, PACK_UNINSTALL, PackNotFound
from shared.kernel.errors import Forbidden, InvalidRequest
from shared.runtime.client import BusClient
from tests.packs.conftest import COURSE, PACK_WAIT
from tests.tenancy.conftest import Account, add_member, create_org, events_of


async def _inventory(bus: BusClient, owner: Account) -> dict[str, Any]:
    """What the org has of the tutoring pack's parts, counted."""
    roles = {r.name: len(r.policies) for r in (await bus.request(ROLE_LIST, {}, owner.ctx)).roles if not r.builtin}
    schemas = {s.type: s.version for s in (await bus.request(TYPE_SCHEMA_LIST, {}, owner.ctx)).schemas}
    prompts = sorted(p.name for p in (await bus.request(PROMPT_LIST, {"limit": 200}, owner.ctx)).prompts)
    masks = sorted(m.field for m in (await bus.request(MASK_LIST, {}, owner.ctx)).masks)
    agent = await bus.request(AGENT_GET, {"slug": "tutoring-assistant"}, owner.ctx)
    return {"roles": roles, "schemas": schemas, "prompts": prompts, "masks": masks,
            "agent": (agent.id, agent.status, len(agent.prompts))}


async def test_a_pack_installed_twice_creates_nothing_twice(
    bus: BusClient, owner: Account, admin: asyncpg.Connection
) -> None:
    first = await bus.request(PACK_INSTALL, {"name": "tutoring"}, owner.ctx, timeout=PACK_WAIT)
    made = {(i.kind, i.name) for i in first.items if i.outcome == "created"}
    assert {("thing_type", "course"), ("thing_type", "lesson"), ("thing_type", "consultation"), ("role", "tutor"),
            ("role", "student"), ("prompt", "tutoring-lesson-plan"), ("agent", "tutoring-assistant"),
            ("field_mask", "student:consultation:properties.tutorNotes")} <= made
    before = await _inventory(bus, owner)
    assert before["roles"] == {"tutor": 15, "student": 12}
    assert before["agent"][1:] == ("active", 1)

    second = await bus.request(PACK_INSTALL, {"name": "tutoring"}, owner.ctx, timeout=PACK_WAIT)
    assert {i.outcome for i in second.items} == {"existing"}, second.items
    assert await _inventory(bus, owner) == before
    assert second.pack.installed_at == first.pack.installed_at
    recorded = [e for e in await events_of(admin, owner.org_id, "organization_updated")
                if e["payload"]["metadata"].get("pack") == "tutoring"]
    assert len(recorded) == 1, "the second install changed nothing, so it logged nothing"
    listed = await bus.request(PACK_LIST, {}, owner.ctx)
    assert [p.name for p in listed.installed] == ["tutoring"]
    assert {"tutoring", "commerce"} <= {p.name for p in listed.available}
    assert (await bus.request(ORG_GET, {}, owner.ctx)).installed_packs == ["tutoring"]
    await bus.request(IDENTITY_BACKFILL, {}, owner.ctx)  # what the identity consumer does on organization_updated
    org_thing = (await bus.request(THING_GET, {"id": owner.org_id}, owner.ctx)).thing
    assert org_thing.properties["installedPacks"] == ["tutoring"]


async def test_a_thing_violating_the_packs_schema_is_refused(bus: BusClient, owner: Account, platform: Account) -> None:
    await bus.request(PACK_INSTALL, {"name": "tutoring"}, owner.ctx, timeout=PACK_WAIT)
    without_level = {k: v for k, v in COURSE.items() if k != "level"}
    with pytest.raises(InvalidProperties) as refused:
        await bus.request(THING_CREATE, {"type": "course", "name": "No level", "properties": without_level}, owner.ctx)
    assert refused.value.details["source"] == "pack:tutoring" and "level" in refused.value.message
    with pytest.raises(InvalidProperties):
        await bus.request(THING_CREATE, {"type": "course", "name": "Bad", "properties": {**COURSE, "level": "guru"}},
                          owner.ctx)
    course = await bus.request(THING_CREATE, {"type": "course", "name": "Algebra", "properties": COURSE}, owner.ctx)
    with pytest.raises(InvalidProperties):
        await bus.request(THING_UPDATE, {"id": course.id, "properties": {"level": None}}, owner.ctx)
    updated = await bus.request(THING_UPDATE, {"id": course.id, "properties": {"level": "advanced"}}, owner.ctx)
    assert updated.properties["level"] == "advanced"

    elsewhere = await create_org(bus, platform)  # the schema is the org's: another org's courses don't follow it
    other = await bus.request(THING_CREATE, {"type": "course", "name": "Free", "properties": without_level}, elsewhere.ctx)
    assert other.properties["subject"] == "algebra"


async def test_only_an_admin_manages_packs(bus: BusClient, owner: Account) -> None:
    user = await add_member(bus, owner, role="org_user")
    for spec, body in ((PACK_INSTALL, {"name": "tutoring"}), (PACK_LIST, {}), (PACK_UNINSTALL, {"name": "tutoring"})):
        with pytest.raises(Forbidden):
            await bus.request(spec, body, user.ctx)
    with pytest.raises(PackNotFound):
        await bus.request(PACK_INSTALL, {"name": "no-such-pack"}, owner.ctx, timeout=PACK_WAIT)
    with pytest.raises(InvalidRequest):
        await bus.request(PACK_INSTALL, {"document": {"name": "bad", "version": "1", "title": "x"}}, owner.ctx)
    with pytest.raises(InvalidRequest):  # a pack may not redefine a built-in role
        await bus.request(PACK_INSTALL, {"document": {"name": "bad", "version": "1.0.0", "title": "x", "roles": [
            {"name": "org_user", "policies": [{"resource": "*", "action": "*"}]}]}}, owner.ctx, timeout=PACK_WAIT)


def _pack(name: str, *types: str) -> dict[str, Any]:
    return {"name": name, "version": "1.0.0", "title": name.title(),
            "thing_types": [{"type": t, "properties_schema": {"type": "object", "required": ["order"]}} for t in types],
            "roles": [{"name": f"{name}_role", "policies": [{"resource": "things", "action": "read"}]}]}


async def test_a_failure_halfway_records_nothing_and_a_retry_completes(bus: BusClient, owner: Account) -> None:
    await bus.request(PACK_INSTALL, {"document": _pack("alpha", "lesson")}, owner.ctx, timeout=PACK_WAIT)
    with pytest.raises(TypeSchemaOwned):  # beta's course schema is made, then alpha owns lesson's: beta stops there
        await bus.request(PACK_INSTALL, {"document": _pack("beta", "course", "lesson")}, owner.ctx, timeout=PACK_WAIT)
    listed = await bus.request(PACK_LIST, {}, owner.ctx)
    assert [p.name for p in listed.installed] == ["alpha"]
    roles = {r.name for r in (await bus.request(ROLE_LIST, {}, owner.ctx)).roles}
    assert "beta_role" not in roles, "no role of a pack that is not recorded"

    await bus.request(PACK_UNINSTALL, {"name": "alpha"}, owner.ctx, timeout=PACK_WAIT)
    retried = await bus.request(PACK_INSTALL, {"document": _pack("beta", "course", "lesson")}, owner.ctx, timeout=PACK_WAIT)
    outcomes = {(i.kind, i.name): i.outcome for i in retried.items}
    assert outcomes[("thing_type", "course")] == "existing" and outcomes[("thing_type", "lesson")] == "created"
    assert outcomes[("role", "beta_role")] == "created"
    assert [p.name for p in (await bus.request(PACK_LIST, {}, owner.ctx)).installed] == ["beta"]


async def test_a_schema_that_could_not_be_checked_is_refused_when_set(bus: BusClient, owner: Account) -> None:
    for schema in ({"type": "object", "properties": {"x": {"$ref": "https://example.com/remote"}}},
                   {"type": "object", "properties": {"x": {"$ref": "#/$defs/missing"}}},
                   {"type": "array"}, {"type": "object", "properties": {"x": {"pattern": "("}}}):
        with pytest.raises(InvalidRequest):
            await bus.request(TYPE_SCHEMA_SET, {"type": "lesson", "properties_schema": schema, "source": "pack:x"},
                              owner.ctx)
    with pytest.raises(UnknownType):  # a granular alias folds its variant into the properties: not a schema's type
        await bus.request(TYPE_SCHEMA_SET, {"type": "intent_mandate", "properties_schema": {}, "source": "pack:x"},
                          owner.ctx)
    local = {"type": "object", "$defs": {"n": {"type": "integer", "minimum": 1}}, "properties": {"order": {"$ref": "#/$defs/n"}}}
    saved = await bus.request(TYPE_SCHEMA_SET, {"type": "lesson", "properties_schema": local, "source": "pack:x"}, owner.ctx)
    assert saved.outcome == "created"
    with pytest.raises(InvalidProperties):
        await bus.request(THING_CREATE, {"type": "lesson", "name": "Zero", "properties": {"order": 0}}, owner.ctx)
    with pytest.raises(TypeSchemaOwned):
        await bus.request(TYPE_SCHEMA_SET, {"type": "lesson", "properties_schema": {}, "source": "pack:y"}, owner.ctx)
