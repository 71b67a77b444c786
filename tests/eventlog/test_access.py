"""Who may append to and read an org's log: the caller's role decides, as everywhere else.

The built-in roles let a `customer` publish but read nothing of the org's log (`events:list` for
events, `events:read` for the aggregates); members and owners read it; an org's own policies refine that.
"""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from shared.contracts.eventlog import EventRecord
from shared.contracts.tenancy import POLICY_ADD
from shared.kernel.envelope import AuthContext
from shared.kernel.errors import Forbidden
from shared.kernel.ids import uuid7
from shared.runtime.client import BusClient
from shared.tools.sdk.events import Events
from tests.eventlog.conftest import wait_until
from tests.tenancy.conftest import Account, account, add_member, create_org  # noqa: F401 (fixture)

SINCE, UNTIL = datetime.now(UTC) - timedelta(days=1), datetime.now(UTC) + timedelta(days=1)

Read = Callable[[Events], Awaitable[Any]]
ORG_READS: dict[str, Read] = {
    "query": lambda c: c.query(),
    "history": lambda c: c.history(uuid7()),
    "tail": lambda c: c.tail_page(after=0, wait=0),
    "dead letters": lambda c: c.dead_letters(),
    "daily counts": lambda c: c.daily_counts(SINCE, UNTIL),
    "revenue": lambda c: c.revenue(SINCE, UNTIL),
    "stats": lambda c: c.stats(),
}
"""Every subject that answers with the whole org's log, or a sum over it."""


@pytest.fixture
async def owner(bus: BusClient, platform: Account) -> Account:  # noqa: F811
    """The owner of a fresh organization (its log holds what tenancy recorded of its creation)."""
    return await create_org(bus, platform)


async def stored(client: Events, event_id: UUID, admin: asyncpg.Connection) -> EventRecord:
    """The event once the ingest has stored it, as `client` reads it."""
    await wait_until(lambda: _is_stored(admin, event_id))
    [event] = [e for e in (await client.query(types=["user_login", "content_viewed"])).events if e.id == event_id]
    return event


async def _is_stored(admin: asyncpg.Connection, event_id: UUID) -> bool:
    return bool(await admin.fetchval("SELECT count(*) FROM eventlog.events WHERE id = $1", event_id))


async def refusals(client: Events) -> dict[str, str]:
    """The reads refused to this client, with the resource:action each was refused on."""
    refused = {}
    for name, read in ORG_READS.items():
        try:
            await read(client)
        except Forbidden as error:
            refused[name] = f"{error.details['resource']}:{error.details['action']}"
    return refused


class TestCustomer:
    async def test_a_customer_key_reads_nothing_of_the_orgs_log(self, bus: BusClient, owner: Account) -> None:
        customer = await add_member(bus, owner, role="customer")
        assert await refusals(Events.over_bus(bus, customer.ctx)) == {
            "query": "events:list", "history": "events:list", "tail": "events:list", "dead letters": "events:list",
            "daily counts": "events:read", "revenue": "events:read", "stats": "events:read",
        }

    async def test_a_customer_key_still_publishes_as_itself(
        self, bus: BusClient, owner: Account, admin: asyncpg.Connection
    ) -> None:
        customer = await add_member(bus, owner, role="customer")
        appended = await Events.over_bus(bus, customer.ctx).publish("content_viewed")
        event = await stored(Events.over_bus(bus, owner.ctx), appended.id, admin)
        assert event.actor_id == customer.person_id

    async def test_an_org_policy_opens_the_aggregates_to_customers_and_nothing_more(
        self, bus: BusClient, owner: Account
    ) -> None:
        customer = await add_member(bus, owner, role="customer")
        await bus.request(POLICY_ADD, {"role": "customer", "resource": "events", "action": "read"}, owner.ctx)
        reverified = await account(bus, customer.key)  # the verified key carries the new policy
        assert set(await refusals(Events.over_bus(bus, reverified.ctx))) == {"query", "history", "tail", "dead letters"}


class TestAllowedRoles:
    async def test_a_member_reads_the_orgs_log(self, bus: BusClient, owner: Account, admin: asyncpg.Connection) -> None:
        member = await add_member(bus, owner, role="org_user")
        client = Events.over_bus(bus, member.ctx)
        assert await refusals(client) == {}
        appended = await Events.over_bus(bus, owner.ctx).publish("user_login")
        assert (await stored(client, appended.id, admin)).actor_id == owner.person_id

    async def test_the_owner_reads_the_orgs_log(self, bus: BusClient, owner: Account) -> None:
        assert await refusals(Events.over_bus(bus, owner.ctx)) == {}

    async def test_a_context_without_permissions_may_do_nothing(self, bus: BusClient, owner: Account) -> None:
        bare = Events.over_bus(bus, AuthContext(owner.org_id, owner.person_id))
        assert set(await refusals(bare)) == set(ORG_READS)
        with pytest.raises(Forbidden):
            await bare.publish("user_login")
