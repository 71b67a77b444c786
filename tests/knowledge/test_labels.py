"""Labels over the bus: get-or-create, hygiene, aliases, deprecation, labelling things, isolation."""

import asyncpg
import pytest

from shared.contracts.graph import THING_DELETE
from shared.contracts.knowledge import (
    ITEM_ADD,
    LABEL_ALIAS,
    LABEL_DELETE,
    LABEL_DEPRECATE,
    LABEL_ENSURE,
    LABEL_GET,
    LABEL_LIST,
    THING_LABEL,
    THING_LABELS,
    THING_UNLABEL,
    THINGS_BY_LABELS,
)
from shared.kernel.errors import Conflict, InvalidRequest, NotFound
from shared.runtime.client import BusClient
from tests.knowledge.conftest import make_thing, outbox_events
from tests.tenancy.conftest import Account


async def test_get_or_create_is_idempotent_and_normalised(bus: BusClient, owner: Account) -> None:
    first = await bus.request(LABEL_ENSURE, {"name": "Industry:Fitness"}, owner.ctx)
    again = await bus.request(LABEL_ENSURE, {"name": " industry:fitness "}, owner.ctx)
    assert first.name == "industry:fitness" and again.id == first.id
    spaced = await bus.request(LABEL_ENSURE, {"name": "topic:Machine Learning"}, owner.ctx)
    assert spaced.name == "topic:machine-learning"


@pytest.mark.parametrize("name", ["skill:", "skill:hello world!", ":x", "x" * 130, "my team!:x", "a:b:c", "9lives:x"])
async def test_bad_names_are_refused_precisely(bus: BusClient, owner: Account, name: str) -> None:
    with pytest.raises(InvalidRequest) as error:
        await bus.request(LABEL_ENSURE, {"name": name}, owner.ctx)
    assert error.value.code in ("invalid_label", "invalid")


async def test_free_form_labels_need_no_prefix(bus: BusClient, owner: Account) -> None:
    assert (await bus.request(LABEL_ENSURE, {"name": "beginner-friendly"}, owner.ctx)).name == "beginner-friendly"


@pytest.mark.parametrize(("name", "canonical"), [("Colour:Blue", "colour:blue"), ("my_team:Q3 Goals", "my_team:q3-goals"),
                                                 ("region-eu:Berlin", "region-eu:berlin")])
async def test_a_prefix_outside_the_curated_ones_is_accepted(
    bus: BusClient, owner: Account, name: str, canonical: str
) -> None:
    """The spec's policy: labels are free-form and user-extensible; curated prefixes are recommended only."""
    label = await bus.request(LABEL_ENSURE, {"name": name}, owner.ctx)
    assert label.name == canonical
    assert (await bus.request(LABEL_ENSURE, {"name": canonical.upper()}, owner.ctx)).id == label.id


async def test_aliases_resolve_and_never_collide(bus: BusClient, owner: Account) -> None:
    label = await bus.request(LABEL_ENSURE, {"name": "technology:javascript", "aliases": ["technology:js"]}, owner.ctx)
    assert label.aliases == ["technology:js"]
    assert (await bus.request(LABEL_GET, {"name": "technology:js"}, owner.ctx)).id == label.id
    assert (await bus.request(LABEL_ENSURE, {"name": "technology:js"}, owner.ctx)).id == label.id
    await bus.request(LABEL_ENSURE, {"name": "technology:typescript"}, owner.ctx)
    with pytest.raises(Conflict) as error:
        await bus.request(LABEL_ALIAS, {"name": "technology:typescript", "alias": "technology:js"}, owner.ctx)
    assert error.value.code == "label_conflict"
    with pytest.raises(Conflict):
        await bus.request(LABEL_ALIAS, {"name": "technology:typescript", "alias": "technology:javascript"}, owner.ctx)


async def test_label_things_and_find_them(bus: BusClient, owner: Account) -> None:
    a = await make_thing(bus, owner.ctx, name="A")
    b = await make_thing(bus, owner.ctx, name="B")
    await bus.request(THING_LABEL, {"thing_id": str(a.id), "labels": ["industry:fitness", "format:video"]}, owner.ctx)
    await bus.request(THING_LABEL, {"thing_id": str(b.id), "labels": ["industry:fitness"]}, owner.ctx)
    labels = await bus.request(THING_LABELS, {"thing_id": str(a.id)}, owner.ctx)
    assert [label.name for label in labels.labels] == ["format:video", "industry:fitness"]
    both = await bus.request(THINGS_BY_LABELS, {"labels": ["industry:fitness", "format:video"]}, owner.ctx)
    assert both.thing_ids == [a.id]
    either = await bus.request(THINGS_BY_LABELS, {"labels": ["industry:fitness", "format:video"], "match": "any"}, owner.ctx)
    assert sorted(either.thing_ids) == sorted([a.id, b.id])
    after = await bus.request(THING_UNLABEL, {"thing_id": str(a.id), "labels": ["format:video"]}, owner.ctx)
    assert [label.name for label in after.labels] == ["industry:fitness"]


async def test_labelling_a_missing_or_foreign_thing_is_not_found(bus: BusClient, owner: Account, stranger: Account) -> None:
    theirs = await make_thing(bus, stranger.ctx)
    with pytest.raises(NotFound):
        await bus.request(THING_LABEL, {"thing_id": str(theirs.id), "labels": ["topic:x"]}, owner.ctx)
    gone = await make_thing(bus, owner.ctx)
    await bus.request(THING_DELETE, {"id": str(gone.id)}, owner.ctx)
    with pytest.raises(NotFound):
        await bus.request(THING_LABEL, {"thing_id": str(gone.id), "labels": ["topic:x"]}, owner.ctx)


async def test_a_referenced_label_is_deprecated_not_deleted(bus: BusClient, owner: Account) -> None:
    thing = await make_thing(bus, owner.ctx)
    await bus.request(THING_LABEL, {"thing_id": str(thing.id), "labels": ["goal:weight-loss"]}, owner.ctx)
    removal = await bus.request(LABEL_DELETE, {"name": "goal:weight-loss"}, owner.ctx)
    assert removal.outcome == "deprecated" and removal.references == 1 and removal.label.deprecated
    still = await bus.request(THING_LABELS, {"thing_id": str(thing.id)}, owner.ctx)
    assert [label.name for label in still.labels] == ["goal:weight-loss"]
    other = await make_thing(bus, owner.ctx)
    with pytest.raises(Conflict) as error:
        await bus.request(THING_LABEL, {"thing_id": str(other.id), "labels": ["goal:weight-loss"]}, owner.ctx)
    assert error.value.code == "label_deprecated"
    listed = await bus.request(LABEL_LIST, {"prefix": "goal:"}, owner.ctx)
    assert listed.labels == []
    listed = await bus.request(LABEL_LIST, {"prefix": "goal:", "include_deprecated": True}, owner.ctx)
    assert [label.name for label in listed.labels] == ["goal:weight-loss"]


async def test_an_unused_label_is_deleted(bus: BusClient, owner: Account) -> None:
    await bus.request(LABEL_ENSURE, {"name": "audience:beginners"}, owner.ctx)
    removal = await bus.request(LABEL_DELETE, {"name": "audience:beginners"}, owner.ctx)
    assert removal.outcome == "deleted" and removal.references == 0
    with pytest.raises(NotFound):
        await bus.request(LABEL_GET, {"name": "audience:beginners"}, owner.ctx)


async def test_a_deleted_labels_aliases_can_name_another_label(
    bus: BusClient, owner: Account, admin: asyncpg.Connection
) -> None:
    await bus.request(LABEL_ENSURE, {"name": "technology:golang", "aliases": ["technology:go"]}, owner.ctx)
    removal = await bus.request(LABEL_DELETE, {"name": "technology:golang"}, owner.ctx)
    assert removal.outcome == "deleted"
    (deleted,) = await outbox_events(admin, owner.org_id, "entity_deleted")
    assert deleted["payload"]["target_id"] == str(removal.label.id)
    assert deleted["payload"]["metadata"]["aliasesRemoved"] == ["technology:go"]
    with pytest.raises(NotFound):
        await bus.request(LABEL_GET, {"name": "technology:go"}, owner.ctx)
    await bus.request(LABEL_ENSURE, {"name": "topic:board-games"}, owner.ctx)
    aliased = await bus.request(LABEL_ALIAS, {"name": "topic:board-games", "alias": "technology:go"}, owner.ctx)
    assert aliased.aliases == ["technology:go"]
    assert (await bus.request(LABEL_GET, {"name": "technology:go"}, owner.ctx)).id == aliased.id
    again = await bus.request(LABEL_ENSURE, {"name": "technology:golang", "aliases": ["technology:golang-lang"]}, owner.ctx)
    assert again.id != removal.label.id and again.aliases == ["technology:golang-lang"]


async def test_items_carrying_a_label_count_as_references(bus: BusClient, owner: Account) -> None:
    await bus.request(ITEM_ADD, {"knowledge_type": "chunk", "text": "Squats build legs.", "labels": ["skill:squats"]}, owner.ctx)
    removal = await bus.request(LABEL_DELETE, {"name": "skill:squats"}, owner.ctx)
    assert removal.outcome == "deprecated"
    assert (await bus.request(LABEL_DEPRECATE, {"name": "skill:squats"}, owner.ctx)).deprecated


async def test_labels_are_per_org(bus: BusClient, owner: Account, stranger: Account) -> None:
    mine = await bus.request(LABEL_ENSURE, {"name": "network:base"}, owner.ctx)
    theirs = await bus.request(LABEL_ENSURE, {"name": "network:base"}, stranger.ctx)
    assert mine.id != theirs.id
    await bus.request(LABEL_DELETE, {"name": "network:base"}, stranger.ctx)
    assert (await bus.request(LABEL_GET, {"name": "network:base"}, owner.ctx)).id == mine.id
