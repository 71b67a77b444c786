"""Field masks and scope rules, enforced in the graph's reads: a real `customer` key over the real bus.

The scene (`Scene`): the customer's own thing (identity mirrored by a backfill, so the person id IS a
thing id), enrolled in course 1 (`enrolled_in`), not in course 2; course 1 `references` course 2, which
has a lesson (`part_of`) (reachable from the customer only through course 2); a blog post `created_by` the
customer and one that is not; the owner's `creator` thing with an email. Rules: courses only when
connected by `enrolled_in`, blog posts only the customer's own, `properties.email` masked on creators,
`properties.internalNotes` redacted on every type.
"""

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from shared.contracts.graph import (
    CONNECTION_QUERY,
    IDENTITY_BACKFILL,
    NEIGHBORS,
    THING_DELETE,
    THING_GET,
    THING_QUERY,
    THING_UPDATE,
)
from shared.contracts.graph.access import (
    MASK_LIST,
    MASK_REMOVE,
    MASK_SET,
    SCOPE_LIST,
    SCOPE_REMOVE,
    SCOPE_SET,
    VISIBLE,
)
from shared.contracts.knowledge import ITEM_ADD, SEARCH, SEARCH_HYBRID
from shared.kernel.errors import Forbidden, InvalidRequest, NotFound
from shared.runtime.client import BusClient
from tests.graph.conftest import link, make_thing
from tests.tenancy.conftest import Account, add_member

COURSE = {"title": "A course", "price": 10, "currency": "USD", "internalNotes": "margin 80%"}


@dataclass
class Scene:
    owner: Account
    customer: Account
    me: UUID
    creator: UUID
    course1: UUID
    course2: UUID
    lesson: UUID
    my_post: UUID
    other_post: UUID


async def _rules(bus: BusClient, owner: Account) -> None:
    for rule in ({"thing_type": "course", "rule": "connected", "connection_type": "enrolled_in"},
                 {"thing_type": "blog_post", "rule": "own"}):
        await bus.request(SCOPE_SET, {"role": "customer", **rule}, owner.ctx)
    await bus.request(MASK_SET, {"role": "customer", "thing_type": "creator", "field": "properties.email"}, owner.ctx)
    await bus.request(MASK_SET, {"role": "customer", "thing_type": "*", "field": "properties.internalNotes",
                                 "mode": "redact"}, owner.ctx)


@pytest.fixture
async def scene(bus: BusClient, owner: Account) -> Scene:
    customer = await add_member(bus, owner, role="customer")
    await bus.request(IDENTITY_BACKFILL, {}, owner.ctx, timeout=60)
    me, creator = customer.person_id, owner.person_id
    course1 = (await make_thing(bus, owner.ctx, "course", "Course one", properties=COURSE)).id
    course2 = (await make_thing(bus, owner.ctx, "course", "Course two", properties=COURSE)).id
    lesson = (await make_thing(bus, owner.ctx, "lesson", "Lesson of two")).id
    my_post = (await make_thing(bus, owner.ctx, "blog_post", "Mine", properties={"internalNotes": "x"})).id
    other_post = (await make_thing(bus, owner.ctx, "blog_post", "Not mine")).id
    await link(bus, owner.ctx, me, course1, "enrolled_in")
    await link(bus, owner.ctx, course1, course2, "references")
    await link(bus, owner.ctx, lesson, course2, "part_of")
    await link(bus, owner.ctx, my_post, me, "created_by")
    await link(bus, owner.ctx, creator, course1, "owns")
    await _rules(bus, owner)
    return Scene(owner, customer, me, creator, course1, course2, lesson, my_post, other_post)


async def _access_events(admin: asyncpg.Connection, org_id: UUID) -> list[dict[str, Any]]:
    """The graph's events about access rules in the org, oldest first (read from its outbox)."""
    rows = await admin.fetch("SELECT envelope FROM graph.outbox ORDER BY created_at")
    events = [json.loads(bytes(r["envelope"])) for r in rows]
    return [e for e in events if e["org_id"] == str(org_id)
            and e["payload"].get("target_type") in ("field_mask", "scope_rule")]


async def _get(bus: BusClient, who: Account, thing_id: UUID, **fields: Any) -> Any:
    return await bus.request(THING_GET, {"id": str(thing_id), **fields}, who.ctx)


async def test_get_masks_fields_and_hides_what_is_out_of_scope(bus: BusClient, scene: Scene) -> None:
    customer = scene.customer
    course = (await _get(bus, customer, scene.course1)).thing
    assert "internalNotes" not in course.properties and course.properties["title"] == "A course"
    assert (await _get(bus, customer, scene.creator)).thing.properties["email"] == "***"
    assert "internalNotes" not in (await _get(bus, customer, scene.my_post)).thing.properties
    for hidden in (scene.course2, scene.other_post):
        with pytest.raises(NotFound) as raised:
            await _get(bus, customer, hidden)
        assert raised.value.code == "not_found" and str(hidden) in raised.value.message  # as for a missing thing
    assert (await _get(bus, customer, scene.lesson)).thing.id == scene.lesson  # lessons: no rule, all visible
    owner_view = (await _get(bus, scene.owner, scene.course2)).thing  # rules name the customer role only
    assert owner_view.properties["internalNotes"] == "margin 80%"
    assert "@" in (await _get(bus, scene.owner, scene.creator)).thing.properties["email"]


async def test_query_filters_in_sql_and_pages_count_right(bus: BusClient, scene: Scene) -> None:
    customer = scene.customer
    courses = await bus.request(THING_QUERY, {"type": "course"}, customer.ctx)
    assert [t.id for t in courses.things] == [scene.course1]
    assert all("internalNotes" not in t.properties for t in courses.things)
    seen, cursor = [], None
    while True:  # one thing a page: every page holds a visible thing, and the pages end where the visible ones do
        page = await bus.request(THING_QUERY, {"limit": 1, **({"cursor": str(cursor)} if cursor else {})}, customer.ctx)
        seen += [t.id for t in page.things]
        assert len(page.things) == 1 or page.next_cursor is None
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    everything = {t.id for t in (await bus.request(THING_QUERY, {}, scene.owner.ctx)).things}
    assert set(seen) == everything - {scene.course2, scene.other_post} and len(seen) == len(set(seen))
    with pytest.raises(Forbidden):  # filtering on a masked field would reveal it
        await bus.request(THING_QUERY, {"type": "creator", "where": [{"path": "email", "op": "exists"}]}, customer.ctx)
    with pytest.raises(Forbidden):
        await bus.request(THING_QUERY, {"where": [{"path": "internalNotes", "op": "eq", "value": "x"}]}, customer.ctx)


async def test_neighbours_neither_show_nor_walk_through_hidden_things(bus: BusClient, scene: Scene) -> None:
    query = {"thing_id": str(scene.me), "depth": 3, "direction": "both"}
    mine = {n.thing.id: n for n in (await bus.request(NEIGHBORS, query, scene.customer.ctx)).neighbors}
    everyone = {n.thing.id for n in (await bus.request(NEIGHBORS, query, scene.owner.ctx)).neighbors}
    assert {scene.course2, scene.lesson, scene.course1, scene.my_post} <= everyone
    assert scene.course1 in mine and scene.my_post in mine and scene.creator in mine
    assert scene.course2 not in mine and scene.other_post not in mine
    assert scene.lesson not in mine  # only reachable through course 2
    assert mine[scene.creator].thing.properties["email"] == "***"
    assert "internalNotes" not in mine[scene.course1].thing.properties
    with pytest.raises(NotFound):
        await bus.request(NEIGHBORS, {"thing_id": str(scene.course2)}, scene.customer.ctx)


async def test_connections_listing_and_related_skip_hidden_ends(bus: BusClient, scene: Scene) -> None:
    listed = await bus.request(CONNECTION_QUERY, {"thing_id": str(scene.course1)}, scene.customer.ctx)
    ends = {c.to_id if c.from_id == scene.course1 else c.from_id for c in listed.connections}
    assert ends == {scene.me, scene.creator}
    owner_listed = await bus.request(CONNECTION_QUERY, {"thing_id": str(scene.course1)}, scene.owner.ctx)
    assert len(owner_listed.connections) == 3
    with pytest.raises(NotFound):
        await bus.request(CONNECTION_QUERY, {"thing_id": str(scene.course2)}, scene.customer.ctx)
    related = await _get(bus, scene.customer, scene.course1, include=["references", "owns"])
    assert [r.thing.id for r in related.related] == [scene.creator]
    assert related.related[0].thing.properties["email"] == "***"


async def test_knowledge_search_drops_hits_citing_hidden_things_or_fields(bus: BusClient, scene: Scene) -> None:
    owner = scene.owner
    for thing_id, field, text in ((scene.course1, "description", "Quokkas of the visible course"),
                                  (scene.course2, "description", "Quokkas of the hidden course"),
                                  (scene.creator, "email", "Quokkas mailbox of the owner")):
        await bus.request(ITEM_ADD, {"knowledge_type": "chunk", "text": text, "source_thing_id": str(thing_id),
                                     "source_field": field}, owner.ctx, timeout=60)
    for spec in (SEARCH, SEARCH_HYBRID):
        everything = await bus.request(spec, {"query": "quokkas", "k": 10}, owner.ctx, timeout=60)
        assert {h.item.source_thing_id for h in everything.hits} == {scene.course1, scene.course2, scene.creator}
        mine = await bus.request(spec, {"query": "quokkas", "k": 10}, scene.customer.ctx, timeout=60)
        assert {h.item.source_thing_id for h in mine.hits} == {scene.course1}  # ingestion may have added its own
    answer = await bus.request(VISIBLE, {"thing_ids": [str(scene.creator), str(scene.course2)],
                                         "fields": ["email", "bio"]}, scene.customer.ctx)
    assert answer.visible == [scene.creator] and answer.hidden_fields == {scene.creator: ["email"]}


async def test_deny_wins_and_priority_decides_masks(bus: BusClient, scene: Scene) -> None:
    owner, customer = scene.owner, scene.customer
    deny = await bus.request(SCOPE_SET, {"role": "customer", "thing_type": "course", "rule": "all", "effect": "deny"},
                             owner.ctx)
    with pytest.raises(NotFound):  # allowed by `connected`, denied by the deny rule: deny wins
        await _get(bus, customer, scene.course1)
    await bus.request(SCOPE_REMOVE, {"id": str(deny.id)}, owner.ctx)
    assert (await _get(bus, customer, scene.course1)).thing.id == scene.course1  # the change took effect at once
    every = await bus.request(MASK_SET, {"role": "customer", "thing_type": "creator", "field": "properties.*"}, owner.ctx)
    same = await bus.request(MASK_SET, {"role": "customer", "thing_type": "creator", "field": "properties.username",
                                        "mode": "allow"}, owner.ctx)
    props = (await _get(bus, customer, scene.creator)).thing.properties
    assert props["username"] == "***" and props["displayName"] == "***"  # a tie: the more restrictive wins
    await bus.request(MASK_SET, {"role": "customer", "thing_type": "creator", "field": "properties.username",
                                 "mode": "allow", "priority": 1}, owner.ctx)
    props = (await _get(bus, customer, scene.creator)).thing.properties
    assert props["username"] != "***" and props["displayName"] == "***"  # a higher-priority allow is the exception
    for rule in (every, same):
        await bus.request(MASK_REMOVE, {"id": str(rule.id)}, owner.ctx)
    assert (await _get(bus, customer, scene.creator)).thing.properties["displayName"] != "***"


async def test_rules_are_admin_only_idempotent_logged_and_listed(
    bus: BusClient, scene: Scene, admin: asyncpg.Connection, stranger: Account
) -> None:
    owner, customer = scene.owner, scene.customer
    member = await add_member(bus, owner, role="org_user")
    body = {"role": "customer", "thing_type": "creator", "field": "properties.email"}
    for who in (customer, member):
        with pytest.raises(Forbidden):
            await bus.request(MASK_SET, body, who.ctx)
    with pytest.raises(Forbidden):
        await bus.request(SCOPE_LIST, {}, customer.ctx)
    before = await _access_events(admin, owner.org_id)
    assert [e["type"] for e in before] == ["entity_created"] * 4  # the scene's four rules
    assert before[2]["payload"]["metadata"] == {"entityType": "field_mask", "role": "customer", "thingType": "creator",
                                                "field": "properties.email", "mode": "mask", "priority": 0}
    again = await bus.request(MASK_SET, body, owner.ctx)  # set before by the scene: nothing changes
    assert len(await _access_events(admin, owner.org_id)) == len(before)
    masks = (await bus.request(MASK_LIST, {"role": "customer"}, owner.ctx)).masks
    assert again.id in {m.id for m in masks} and len(masks) == 2
    scopes = (await bus.request(SCOPE_LIST, {"thing_type": "course"}, member.ctx)).rules
    assert [(r.rule, r.connection_type) for r in scopes] == [("connected", "enrolled_in")]
    await bus.request(MASK_REMOVE, {"id": str(again.id)}, owner.ctx)
    assert (await _access_events(admin, owner.org_id))[-1]["type"] == "entity_deleted"
    with pytest.raises(NotFound):
        await bus.request(MASK_REMOVE, {"id": str(again.id)}, owner.ctx)
    with pytest.raises(NotFound):  # another org's rule is no rule here
        await bus.request(SCOPE_REMOVE, {"id": str(scopes[0].id)}, stranger.ctx)
    for bad in ({**body, "field": "email"}, {**body, "role": "service:graph"}, {**body, "thing_type": "nope"},
                {"role": "customer", "thing_type": "course", "rule": "connected"}):
        spec = SCOPE_SET if "rule" in bad else MASK_SET
        with pytest.raises(InvalidRequest):
            await bus.request(spec, bad, owner.ctx)
    with pytest.raises(Forbidden):
        await bus.request(MASK_SET, {**body, "role": "platform_owner"}, owner.ctx)


async def test_writes_answer_as_reads_do(bus: BusClient, scene: Scene) -> None:
    """A role that may update meets its rules there too: out of scope is missing, and the reply is masked."""
    owner = scene.owner
    member = await add_member(bus, owner, role="org_user")
    await bus.request(SCOPE_SET, {"role": "org_user", "thing_type": "course", "rule": "all", "effect": "deny"}, owner.ctx)
    await bus.request(MASK_SET, {"role": "org_user", "thing_type": "blog_post", "field": "properties.internalNotes"},
                      owner.ctx)
    for spec in (THING_UPDATE, THING_DELETE):
        with pytest.raises(NotFound):
            await bus.request(spec, {"id": str(scene.course1), **({"name": "x"} if spec is THING_UPDATE else {})},
                              member.ctx)
    renamed = await bus.request(THING_UPDATE, {"id": str(scene.my_post), "name": "Renamed",
                                                "properties": {"internalNotes": "***"}}, member.ctx)
    assert renamed.name == "Renamed" and renamed.properties["internalNotes"] == "***"
    assert (await _get(bus, owner, scene.my_post)).thing.properties["internalNotes"] == "x"  # "***" sent back: kept
    assert (await _get(bus, owner, scene.course1)).thing.name == "Course one"  # the refused writes wrote nothing


async def test_own_admits_what_the_actor_created_and_nothing_of_another_member(bus: BusClient, owner: Account) -> None:
    """`own` needs no link: every create records its actor (`created_by`), so members see their own posts only."""
    ann, bob = await add_member(bus, owner), await add_member(bus, owner)
    await bus.request(SCOPE_SET, {"role": "org_user", "thing_type": "blog_post", "rule": "own"}, owner.ctx)
    anns = (await make_thing(bus, ann.ctx, "blog_post", "Ann's post")).id
    bobs = (await make_thing(bus, bob.ctx, "blog_post", "Bob's post")).id
    assert (await _get(bus, ann, anns)).thing.id == anns
    with pytest.raises(NotFound):
        await _get(bus, ann, bobs)
    assert [t.id for t in (await bus.request(THING_QUERY, {"type": "blog_post"}, bob.ctx)).things] == [bobs]
    assert {t.id for t in (await bus.request(THING_QUERY, {"type": "blog_post"}, owner.ctx)).things} >= {anns, bobs}


async def test_a_role_with_masks_and_no_scope_walks_alone_yet_masked(bus: BusClient, scene: Scene) -> None:
    """A role with field masks but no scope rule walks in one lone statement (`graph.neighbors`), like an unruled
    role, and still gets its masks on every thing it reaches."""
    member = await add_member(bus, scene.owner, role="org_user")
    await bus.request(MASK_SET, {"role": "org_user", "thing_type": "creator", "field": "properties.email"},
                      scene.owner.ctx)
    query = {"thing_id": str(scene.course1), "depth": 2, "direction": "both"}
    reached = {n.thing.id: n.thing for n in (await bus.request(NEIGHBORS, query, member.ctx)).neighbors}
    assert {scene.me, scene.creator, scene.course2, scene.lesson} <= set(reached)  # no scope: everything reached
    assert reached[scene.creator].properties["email"] == "***"
    assert reached[scene.course2].properties["internalNotes"] == "margin 80%"  # the customer's redaction is not its
    owner_view = {n.thing.id: n.thing for n in (await bus.request(NEIGHBORS, query, scene.owner.ctx)).neighbors}
    assert "@" in owner_view[scene.creator].properties["email"]
