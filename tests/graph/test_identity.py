"""Tenancy's orgs, people and memberships appear in the graph with the same ids, and stay current.

The session's graph runs without its identity consumer (other tests count an org's things), so
`mirror` starts it on the session's graph replica for each test here: the real durable consumer
of the real event stream, as `services/graph/replica.py` starts it in production.
"""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
import pytest
from nats.aio.client import Client as NatsClient

from services.graph.identity import IdentityConsumer
from shared.contracts.graph import CONNECTION_QUERY, IDENTITY_BACKFILL, THING_GET, THING_QUERY
from shared.contracts.tenancy import MEMBER_REMOVE, MEMBER_ROLE, PERSON_UPDATE
from shared.kernel import subjects
from shared.kernel.errors import Forbidden, NotFound
from shared.runtime.client import BusClient
from shared.runtime.service import ServiceRuntime
from tests.cli.conftest import Cli
from tests.graph.conftest import make_thing
from tests.tenancy.conftest import Account, Mailbox, add_member, create_org, events_of, mailbox  # noqa: F401

T = TypeVar("T")
DEADLINE = 60.0  # the machine is shared: the mirror takes well under a second when it is not loaded


@pytest.fixture
async def mirror(services: dict[str, ServiceRuntime], nc: NatsClient) -> AsyncIterator[IdentityConsumer]:
    """The consumer, caught up first: its first start in a session reads every org the earlier tests made."""
    consumer = IdentityConsumer(services["graph"])
    await consumer.start(services["graph"].broker.connection)
    await eventually(lambda: _caught_up(nc.jetstream(), consumer), "the identity consumer caught up", deadline=600)
    yield consumer
    await consumer.stop()


async def eventually(check: Callable[[], Awaitable[T]], what: str, deadline: float = DEADLINE) -> T:
    """`check()` once it stops raising (AssertionError or NotFound); fails after `deadline` seconds."""
    deadline = time.monotonic() + deadline
    while True:
        try:
            return await check()
        except (AssertionError, NotFound):
            if time.monotonic() > deadline:
                raise AssertionError(f"never happened: {what}") from None
            await asyncio.sleep(0.1)


async def _memberships(bus: BusClient, owner: Account, **query: Any) -> list[Any]:
    reply = await bus.request(CONNECTION_QUERY, {"thing_id": str(owner.org_id), "direction": "in",
                                                 "types": ["member_of"], **query}, owner.ctx)
    return reply.connections


async def _identity_counts(admin: asyncpg.Connection, org_id: UUID) -> tuple[int, int]:
    things = await admin.fetchval("SELECT count(*) FROM graph.things WHERE org_id = $1"
                                  " AND type IN ('organization', 'creator', 'audience_member')", org_id)
    connections = await admin.fetchval("SELECT count(*) FROM graph.connections WHERE org_id = $1"
                                       " AND type = 'member_of'", org_id)
    return things, connections


@pytest.mark.usefixtures("mirror")
async def test_a_new_org_and_its_members_appear_with_the_same_ids(bus: BusClient, platform: Account) -> None:
    started = time.monotonic()
    owner = await create_org(bus, platform)
    member = await add_member(bus, owner, "org_user")
    customer = await add_member(bus, owner, "customer")

    async def mirrored() -> list[Any]:
        connections = await _memberships(bus, owner)
        assert {c.from_id for c in connections} == {owner.person_id, member.person_id, customer.person_id}
        return connections

    connections = await eventually(mirrored, "three member_of connections")
    print(f"mirrored in {time.monotonic() - started:.2f}s")
    org = (await bus.request(THING_GET, {"id": str(owner.org_id)}, owner.ctx)).thing
    assert (org.type, org.properties["plan"]) == ("organization", "starter")
    people = {p: (await bus.request(THING_GET, {"id": str(p)}, owner.ctx)).thing
              for p in (owner.person_id, member.person_id, customer.person_id)}
    assert people[owner.person_id].type == people[member.person_id].type == "creator"
    assert people[customer.person_id].type == "audience_member"
    assert people[owner.person_id].properties["role"] == "org_owner"
    by_person = {c.from_id: c for c in connections}
    assert by_person[customer.person_id].metadata["role"] == "customer"
    assert {"role", "permissions", "joinedAt"} <= by_person[member.person_id].metadata.keys()
    assert all(c.to_id == owner.org_id and c.valid_to is None for c in connections)


async def test_a_replay_of_tenancys_events_creates_nothing_twice(
    bus: BusClient, owner: Account, admin: asyncpg.Connection, nc: NatsClient, mirror: IdentityConsumer
) -> None:
    member = await add_member(bus, owner, "org_user")
    await eventually(lambda: _expect_members(bus, owner, 2), "two members mirrored")
    before = await _identity_counts(admin, owner.org_id)
    events = await events_of(admin, owner.org_id)
    assert len(events) >= 3
    js = nc.jetstream()
    for event in events:  # published again without their message ids: JetStream delivers them again
        await js.publish(subjects.event(event["protocol"], owner.org_id, event["type"]), json.dumps(event).encode())
    await eventually(lambda: _caught_up(js, mirror), "the replayed events consumed")
    assert await _identity_counts(admin, owner.org_id) == before == (3, 2)
    again = await bus.request(IDENTITY_BACKFILL, {}, owner.ctx)
    assert again.organizations == 1
    assert again.things_created == again.things_updated == again.connections_created == again.connections_ended == 0
    assert member.person_id in {c.from_id for c in await _memberships(bus, owner)}


async def _expect_members(bus: BusClient, owner: Account, count: int) -> None:
    assert len([c for c in await _memberships(bus, owner) if c.valid_to is None]) == count


async def _caught_up(js: Any, mirror: IdentityConsumer) -> None:
    info = await js.consumer_info(mirror.consumer.policy.stream, mirror.consumer.policy.durable)
    assert info.num_pending == 0 and info.num_ack_pending == 0


@pytest.mark.usefixtures("mirror")
async def test_profile_changes_reach_the_persons_thing_in_every_org(
    bus: BusClient, owner: Account, stranger: Account, mailbox: Mailbox  # noqa: F811
) -> None:
    member = await add_member(bus, owner, "org_user")
    await eventually(lambda: _expect_members(bus, owner, 2), "the member mirrored")
    thing = (await bus.request(THING_GET, {"id": str(member.person_id)}, owner.ctx)).thing
    await add_member(bus, stranger, "org_user", email=thing.properties["email"], mailbox=mailbox)
    await eventually(lambda: _expect_members(bus, stranger, 2), "the member mirrored in the second org")
    await bus.request(PERSON_UPDATE, {"display_name": "Renamed Person", "bio": "Hello."}, member.ctx)

    async def renamed(org: Account) -> None:
        thing = (await bus.request(THING_GET, {"id": str(member.person_id)}, org.ctx)).thing
        assert (thing.name, thing.properties["displayName"], thing.properties.get("bio")) == (
            "Renamed Person", "Renamed Person", "Hello.")

    await eventually(lambda: renamed(owner), "the profile change in the first org")
    await eventually(lambda: renamed(stranger), "the profile change in the second org")


@pytest.mark.usefixtures("mirror")
async def test_a_role_change_updates_the_connection_and_a_removal_ends_it(
    bus: BusClient, owner: Account, admin: asyncpg.Connection
) -> None:
    member = await add_member(bus, owner, "org_user")
    await eventually(lambda: _expect_members(bus, owner, 2), "the member mirrored")
    await bus.request(MEMBER_ROLE, {"person_id": str(member.person_id), "role": "customer"}, owner.ctx)

    async def demoted() -> None:
        [connection] = [c for c in await _memberships(bus, owner) if c.from_id == member.person_id]
        assert connection.metadata["role"] == "customer"
        thing = (await bus.request(THING_GET, {"id": str(member.person_id)}, owner.ctx)).thing
        assert thing.type == "audience_member"

    await eventually(demoted, "the role change mirrored")
    await bus.request(MEMBER_REMOVE, {"person_id": str(member.person_id)}, owner.ctx)

    async def ended() -> Any:
        [connection] = [c for c in await _memberships(bus, owner) if c.from_id == member.person_id]
        assert connection.valid_to is not None
        return connection

    await eventually(ended, "the removal mirrored")
    assert (await bus.request(THING_GET, {"id": str(member.person_id)}, owner.ctx)).thing.id == member.person_id
    now = await _memberships(bus, owner, as_of=datetime.now(UTC).isoformat())
    assert member.person_id not in {c.from_id for c in now}
    assert await _identity_counts(admin, owner.org_id) == (3, 2)  # history kept: nothing deleted


async def test_the_backfill_mirrors_existing_data_and_logs_its_writes(
    bus: BusClient, owner: Account, admin: asyncpg.Connection
) -> None:
    member = await add_member(bus, owner, "org_user")  # no consumer running: nothing mirrored yet
    await make_thing(bus, owner.ctx)
    assert await _identity_counts(admin, owner.org_id) == (0, 0)
    synced = await bus.request(IDENTITY_BACKFILL, {}, owner.ctx, timeout=60)
    assert (synced.organizations, synced.things_created, synced.connections_created) == (1, 3, 2)
    assert member.person_id in {c.from_id for c in await _memberships(bus, owner)}
    logged = await admin.fetch("SELECT envelope FROM graph.outbox ORDER BY created_at DESC LIMIT 50")
    created = [json.loads(bytes(r["envelope"])) for r in logged]
    mine = [e for e in created if e["org_id"] == str(owner.org_id) and e["type"] == "entity_created"
            and e["payload"]["metadata"].get("source") == "tenancy"]
    assert len(mine) == 5  # three things, two connections
    things = (await bus.request(THING_QUERY, {"type": "organization"}, owner.ctx)).things
    assert [t.id for t in things] == [owner.org_id]


async def test_only_a_platform_owner_backfills_every_org(bus: BusClient, owner: Account) -> None:
    with pytest.raises(Forbidden):
        await bus.request(IDENTITY_BACKFILL, {"all_organizations": True}, owner.ctx)


async def test_one_graph_backfill_identity(bus: BusClient, owner: Account, migrated: Any,
                                           admin: asyncpg.Connection) -> None:
    await add_member(bus, owner, "customer")
    ran = await Cli(migrated, owner.key)("graph", "backfill-identity", "--json")
    synced = json.loads(ran.ok())
    assert (synced["organizations"], synced["things_created"], synced["connections_created"]) == (1, 3, 2)
    assert await _identity_counts(admin, owner.org_id) == (3, 2)
    assert json.loads((await Cli(migrated, owner.key)("graph", "backfill-identity", "--json")).ok())["things_created"] == 0
