"""Quota use is exact: a graph killed between reserving and committing, or between committing and
settling, leaves usage equal to the live things once it recovers; concurrent creates at the limit
never overshoot it.

The kills are real: a graph replica in its own process (`create_until_killed`) is SIGKILLed with
its reservation held; the session's graph (and its settler) is the replica that recovers.
"""

import asyncio
import signal
import subprocess
import sys
import time
from uuid import UUID

import asyncpg
import pytest

from services.graph.replica import GraphState
from shared.contracts.graph import THING_CREATE, THING_CREATE_BATCH
from shared.contracts.tenancy import QUOTA_SET, QUOTA_USAGE, Quota
from shared.kernel.errors import QuotaExceeded
from shared.kernel.settings import Settings
from shared.runtime.client import BusClient
from shared.runtime.service import ServiceRuntime
from tests.graph.conftest import make_thing
from tests.graph.test_quota import _until_waiting_on
from tests.tenancy.conftest import Account

LIMIT = 5


async def _usage(bus: BusClient, owner: Account) -> Quota:
    return next(q for q in (await bus.request(QUOTA_USAGE, {}, owner.ctx)).quotas if q.metric == "things")


async def _live_things(admin: asyncpg.Connection, org_id: UUID) -> int:
    """The org's live things, less its identity (the org and its people, mirrored from tenancy, count nothing)."""
    return await admin.fetchval(
        "SELECT count(*) FROM graph.things WHERE org_id = $1 AND deleted_at IS NULL"
        " AND type NOT IN ('organization', 'creator', 'audience_member')", org_id,
    )


async def _until_unreserved(bus: BusClient, owner: Account, timeout: float = 15.0) -> Quota:
    deadline = time.monotonic() + timeout
    while (usage := await _usage(bus, owner)).reserved:
        assert time.monotonic() < deadline, f"the dead replica's reservation never expired: {usage}"
        await asyncio.sleep(0.2)
    return usage


def _spawn(mode: str, settings: Settings, owner: Account, key: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.graph.create_until_killed", mode, settings.database_url, settings.nats_url,
         owner.key, key],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.fixture
async def limited(bus: BusClient, owner: Account) -> Account:
    await bus.request(QUOTA_SET, {"metric": "things", "limit": LIMIT}, owner.ctx)
    return owner


async def test_a_graph_killed_between_reserve_and_commit_leaks_no_unit(
    bus: BusClient, limited: Account, admin: asyncpg.Connection, migrated: Settings
) -> None:
    await make_thing(bus, limited.ctx)
    key = "killed-before-commit"
    transaction = admin.transaction()
    await transaction.start()
    process = None
    try:  # a row under the same key, uncommitted: the dead replica's insert waits on it, after its reservation
        await admin.execute("INSERT INTO graph.things (id, org_id, type, name, status, idempotency_key)"
                            " VALUES (gen_random_uuid(), $1, 'blog_post', 'holder', 'draft', $2)", limited.org_id, key)
        process = _spawn("hang", migrated, limited, key)
        await _until_waiting_on(admin, timeout=60)
        assert (await _usage(bus, limited)).reserved >= 1  # the dead replica's lease (what was left of the limit)
        process.send_signal(signal.SIGKILL)
        assert await asyncio.to_thread(process.wait) == -signal.SIGKILL
    finally:
        await transaction.rollback()
        if process is not None and process.poll() is None:
            process.kill()
    usage = await _until_unreserved(bus, limited)
    assert usage.used == await _live_things(admin, limited.org_id) == 1
    for _ in range(LIMIT - 1):
        await make_thing(bus, limited.ctx)
    with pytest.raises(QuotaExceeded):
        await make_thing(bus, limited.ctx)
    assert (await _usage(bus, limited)).used == await _live_things(admin, limited.org_id) == LIMIT


async def test_a_graph_killed_between_commit_and_settle_is_settled_on_recovery(
    bus: BusClient, limited: Account, admin: asyncpg.Connection, migrated: Settings,
    services: dict[str, ServiceRuntime],
) -> None:
    await make_thing(bus, limited.ctx)
    process = _spawn("after_commit", migrated, limited, "killed-after-commit")
    assert await asyncio.to_thread(process.wait, 60) == -signal.SIGKILL, process.stderr.read() if process.stderr else ""
    assert await _live_things(admin, limited.org_id) == 2
    held = await _usage(bus, limited)
    assert (held.used, held.used + held.reserved) == (1, LIMIT)  # its lease counts against the limit till it expires
    await _until_unreserved(bus, limited)
    graph: GraphState = services["graph"].state
    assert await graph.settler.settle_pending(0) >= 1  # what the recovering replica does at start
    assert (await _usage(bus, limited)).used == await _live_things(admin, limited.org_id) == 2
    assert not await admin.fetchval("SELECT count(*) FROM graph.quota_pending WHERE org_id = $1", limited.org_id)
    assert await graph.settler.settle_pending(0) == 0 and (await _usage(bus, limited)).used == 2  # once only


async def test_concurrent_creates_at_the_limit_never_overshoot(
    bus: BusClient, limited: Account, admin: asyncpg.Connection
) -> None:
    create = {"type": "blog_post", "name": "racing"}
    outcomes = await asyncio.gather(*(bus.request(THING_CREATE, create, limited.ctx, timeout=60) for _ in range(2 * LIMIT)),
                                    return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert all(isinstance(o, QuotaExceeded) for o in refused), refused
    assert len(outcomes) - len(refused) == LIMIT
    assert (await _usage(bus, limited)).used == await _live_things(admin, limited.org_id) == LIMIT


async def test_concurrent_batches_are_taken_whole_or_refused_whole(
    bus: BusClient, owner: Account, admin: asyncpg.Connection
) -> None:
    await bus.request(QUOTA_SET, {"metric": "things", "limit": 10}, owner.ctx)
    batch = {"things": [{"type": "blog_post", "name": f"b{n}"} for n in range(3)]}
    outcomes = await asyncio.gather(*(bus.request(THING_CREATE_BATCH, batch, owner.ctx, timeout=60) for _ in range(6)),
                                    return_exceptions=True)
    assert sum(not isinstance(o, BaseException) for o in outcomes) == 3
    assert all(isinstance(o, QuotaExceeded) for o in outcomes if isinstance(o, BaseException))
    assert (await _usage(bus, owner)).used == await _live_things(admin, owner.org_id) == 9
