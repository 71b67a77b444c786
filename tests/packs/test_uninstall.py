"""Uninstalling a pack: what nothing uses goes, what is in use stays, and the reply says why."""

import pytest

from shared.contracts.agents import AGENT_GET, PROMPT_LIST
from shared.contracts.graph import IDENTITY_BACKFILL, THING_CREATE, THING_DELETE, THING_GET
from shared.contracts.graph.access import MASK_LIST
from shared.contracts.graph.schemas import TYPE_SCHEMA_LIST
from shared.contracts.tenancy import ORG_GET, RBAC_CHECK, ROLE_CREATE, ROLE_LIST
from shared.contracts.tenancy.packs import PACK_INSTALL, PACK_LIST, PACK_UNINSTALL, PackNotInstalled
from shared.runtime.client import BusClient
from tests.packs.conftest import LESSON, PACK_WAIT
from tests.tenancy.conftest import Account, add_member


async def test_uninstall_keeps_what_is_in_use(bus: BusClient, owner: Account) -> None:
    await bus.request(PACK_INSTALL, {"name": "tutoring"}, owner.ctx, timeout=PACK_WAIT)
    tutor = await add_member(bus, owner, role="tutor")
    lesson = await bus.request(THING_CREATE, {"type": "lesson", "name": "Fractions", "properties": LESSON}, tutor.ctx)
    await bus.request(IDENTITY_BACKFILL, {}, owner.ctx)  # the org's thing says it has the pack ...
    assert (await bus.request(THING_GET, {"id": owner.org_id}, owner.ctx)).thing.properties["installedPacks"] == ["tutoring"]

    done = await bus.request(PACK_UNINSTALL, {"name": "tutoring"}, owner.ctx, timeout=PACK_WAIT)
    outcomes = {(i.kind, i.name): (i.outcome, i.reason) for i in done.items}
    assert outcomes[("role", "tutor")][0] == "kept" and "held by 1" in outcomes[("role", "tutor")][1]
    assert outcomes[("role", "student")] == ("removed", None)
    assert outcomes[("thing_type", "lesson")][0] == "kept" and "1 live lesson" in outcomes[("thing_type", "lesson")][1]
    assert outcomes[("thing_type", "course")] == outcomes[("thing_type", "consultation")] == ("removed", None)
    assert outcomes[("agent", "tutoring-assistant")] == outcomes[("prompt", "tutoring-lesson-plan")] == ("removed", None)
    assert outcomes[("field_mask", "student:consultation:properties.tutorNotes")] == ("removed", None)

    assert (await bus.request(PACK_LIST, {}, owner.ctx)).installed == []
    assert (await bus.request(ORG_GET, {}, owner.ctx)).installed_packs == []
    await bus.request(IDENTITY_BACKFILL, {}, owner.ctx)  # ... and no longer does
    assert "installedPacks" not in (await bus.request(THING_GET, {"id": owner.org_id}, owner.ctx)).thing.properties
    roles = {r.name for r in (await bus.request(ROLE_LIST, {}, owner.ctx)).roles}
    assert "tutor" in roles and "student" not in roles
    assert [s.type for s in (await bus.request(TYPE_SCHEMA_LIST, {}, owner.ctx)).schemas] == ["lesson"]
    assert (await bus.request(MASK_LIST, {}, owner.ctx)).masks == []
    assert (await bus.request(AGENT_GET, {"slug": "tutoring-assistant"}, owner.ctx)).status == "archived"
    assert [p.name for p in (await bus.request(PROMPT_LIST, {}, owner.ctx)).prompts] == []
    assert (await bus.request(RBAC_CHECK, {"resource": "things", "action": "create"}, tutor.ctx)).allowed, \
        "the tutor kept the role, whole"

    await bus.request(THING_DELETE, {"id": lesson.id}, owner.ctx)  # once the lesson is gone, a reinstall and
    await bus.request(PACK_INSTALL, {"name": "tutoring"}, owner.ctx, timeout=PACK_WAIT)  # uninstall takes its schema too
    again = await bus.request(PACK_UNINSTALL, {"name": "tutoring"}, owner.ctx, timeout=PACK_WAIT)
    assert {(i.kind, i.name): i.outcome for i in again.items}[("thing_type", "lesson")] == "removed"
    assert (await bus.request(TYPE_SCHEMA_LIST, {}, owner.ctx)).schemas == []


async def test_uninstalling_a_pack_that_is_not_installed_is_not_found(bus: BusClient, owner: Account) -> None:
    with pytest.raises(PackNotInstalled):
        await bus.request(PACK_UNINSTALL, {"name": "tutoring"}, owner.ctx, timeout=PACK_WAIT)


async def test_a_role_the_org_had_before_the_pack_stays(bus: BusClient, owner: Account) -> None:
    await bus.request(ROLE_CREATE, {"name": "student", "policies": [{"resource": "things", "action": "read"}]}, owner.ctx)
    installed = await bus.request(PACK_INSTALL, {"name": "tutoring"}, owner.ctx, timeout=PACK_WAIT)
    assert {(i.kind, i.name): i.outcome for i in installed.items}[("role", "student")] == "existing"
    done = await bus.request(PACK_UNINSTALL, {"name": "tutoring"}, owner.ctx, timeout=PACK_WAIT)
    student = {(i.kind, i.name): i for i in done.items}[("role", "student")]
    assert student.outcome == "kept" and "before the pack" in (student.reason or "")
    roles = {r.name: r for r in (await bus.request(ROLE_LIST, {}, owner.ctx)).roles}
    assert [(p.resource, p.action) for p in roles["student"].policies] == [("things", "read")], \
        "the pack's policies went, the org's own stayed"
