"""The things quota is taken before the graph's transaction opens: a create that fails after that gives it back.

The race is real: the test holds an uncommitted row under an idempotency key, so the graph's
read of earlier keys does not see it, the quota unit is taken, and the insert waits on the row's
lock; the test then commits, and the graph finds the key taken inside its transaction.
"""

import asyncio
import time
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from shared.contracts.tenancy import QUOTA_SET, QUOTA_USAGE
from shared.kernel.errors import Conflict, InvalidRequest, QuotaExceeded
from shared.kernel.ids import uuid7
from shared.kernel.ontology import ThingType
from shared.runtime.client import BusClient
from tests.graph.conftest import make_thing
from tests.graph.samples import INVALID
from tests.tenancy.conftest import Account

KEY = "race-key"


async def _things_used(bus: BusClient, owner: Account) -> int:
    quotas = (await bus.request(QUOTA_USAGE, {}, owner.ctx)).quotas
    return next(quota.used for quota in quotas if quota.metric == "things")


async def _until_waiting_on(admin: asyncpg.Connection, timeout: float = 10.0) -> None:
    """Until some backend waits for a lock this connection holds."""
    deadline = time.monotonic() + timeout
    query = "SELECT count(*) FROM pg_locks WHERE NOT granted AND pg_backend_pid() = ANY(pg_blocking_pids(pid))"
    while not await admin.fetchval(query):
        assert time.monotonic() < deadline, "the graph's insert never waited on the uncommitted row"
        await asyncio.sleep(0.01)


async def _create_racing_a_committed_key(
    bus: BusClient, owner: Account, admin: asyncpg.Connection, request_hash: str, name: str
) -> tuple[UUID, Any]:
    """Create under KEY while another writer holds an uncommitted thing under it; that writer commits mid-create."""
    theirs = uuid7()
    transaction = admin.transaction()
    await transaction.start()
    try:
        await admin.execute(
            "INSERT INTO graph.things (id, org_id, type, name, status, idempotency_key, request_hash)"
            " VALUES ($1, $2, 'blog_post', $3, 'draft', $4, $5)",
            theirs, owner.org_id, name, KEY, request_hash,
        )
        creating = asyncio.create_task(make_thing(bus, owner.ctx, name=name, idempotency_key=KEY))
        await _until_waiting_on(admin)
    except BaseException:
        await transaction.rollback()
        raise
    await transaction.commit()
    return theirs, await asyncio.gather(creating, return_exceptions=True)


@pytest.fixture
async def counted(bus: BusClient, owner: Account) -> Account:
    """An org whose things are counted (an org without a `things` quota is not)."""
    await bus.request(QUOTA_SET, {"metric": "things", "limit": 10}, owner.ctx)
    await make_thing(bus, owner.ctx)
    return owner


async def test_a_create_refused_before_the_quota_counts_nothing(bus: BusClient, counted: Account) -> None:
    before = await _things_used(bus, counted)
    with pytest.raises(InvalidRequest):
        await make_thing(bus, counted.ctx, "course", properties=INVALID[ThingType.COURSE][0])
    assert await _things_used(bus, counted) == before


async def test_a_conflict_found_in_the_transaction_gives_the_quota_unit_back(
    bus: BusClient, counted: Account, admin: asyncpg.Connection
) -> None:
    before = await _things_used(bus, counted)
    _, [outcome] = await _create_racing_a_committed_key(bus, counted, admin, "another request", "ours")
    assert isinstance(outcome, Conflict) and outcome.code == "idempotency_conflict"
    assert await _things_used(bus, counted) == before


async def test_losing_the_race_to_the_same_request_answers_with_the_winner_and_gives_the_unit_back(
    bus: BusClient, counted: Account, admin: asyncpg.Connection
) -> None:
    probe = await make_thing(bus, counted.ctx, name="same", idempotency_key="probe-key")
    same_hash = await admin.fetchval("SELECT request_hash FROM graph.things WHERE id = $1", probe.id)
    before = await _things_used(bus, counted)
    theirs, [outcome] = await _create_racing_a_committed_key(bus, counted, admin, same_hash, "same")
    assert not isinstance(outcome, BaseException), outcome
    assert outcome.id == theirs
    assert await _things_used(bus, counted) == before


async def test_at_the_limit_a_repeated_key_is_answered_not_refused(bus: BusClient, owner: Account) -> None:
    """A create reserves its unit before the transaction that reads earlier keys; at the limit that reservation is
    refused, and the keys are then read first: a repeat answers its stored thing, a new thing is still refused."""
    await bus.request(QUOTA_SET, {"metric": "things", "limit": 2}, owner.ctx)
    first = await make_thing(bus, owner.ctx, name="kept", idempotency_key="at-limit")
    await make_thing(bus, owner.ctx, name="filler")
    assert await _things_used(bus, owner) == 2
    again = await make_thing(bus, owner.ctx, name="kept", idempotency_key="at-limit")
    assert again.id == first.id
    with pytest.raises(QuotaExceeded):
        await make_thing(bus, owner.ctx, name="one too many", idempotency_key="at-limit-new")
    assert await _things_used(bus, owner) == 2
