"""Quota leases (`services/graph/quota_leases.py`): a replica counts creates against a block of units it leased,
and usage stays exact: what a lease did not use goes back when its window ends, replicas together never take
more than the limit, and a replica killed holding a lease leaves usage exact once the lease expired.

The extra replicas are real graph runtimes on the session's NATS and Postgres, with an empty router (the
session's graph answers the bus) and short lease windows; their creates go through the graph's own handler.
"""

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import asyncpg
import pytest

from services.graph import app, replica
from services.graph.replica import GraphState
from services.graph.settings import GraphSettings
from shared.contracts.graph import Thing, ThingCreate
from shared.contracts.tenancy import QUOTA_SET
from shared.kernel.envelope import AuthContext, Envelope
from shared.kernel.errors import QuotaExceeded
from shared.kernel.settings import Settings
from shared.runtime.client import BusClient
from shared.runtime.context import WorkContext
from shared.runtime.handlers import ServiceRouter
from shared.runtime.service import ServiceRuntime
from tests.graph.test_quota_exact import _live_things, _spawn, _until_unreserved, _usage
from tests.tenancy.conftest import Account

LEASE_SECONDS = 0.5


async def _start_replica(settings: Settings) -> ServiceRuntime:
    graph_settings = GraphSettings(
        database_url=settings.database_url, nats_url=settings.nats_url, graph_identity_sync=False,
        graph_quota_lease_seconds=LEASE_SECONDS, graph_quota_settle_interval=0.2, graph_quota_reservation_ttl=5.0,
    )
    definition = replace(app.definition, router=ServiceRouter("graph"), on_start=[replica.start], on_stop=[replica.stop])
    runtime = ServiceRuntime(definition, graph_settings)
    await runtime.start(migrate=False)
    return runtime


@pytest.fixture
async def replicas(migrated: Settings) -> AsyncIterator[Callable[[], Awaitable[ServiceRuntime]]]:
    """Start graph replicas on demand; stopped (their leases settled) at the end."""
    started: list[ServiceRuntime] = []

    async def start() -> ServiceRuntime:
        started.append(await _start_replica(migrated))
        return started[-1]

    yield start
    for runtime in started:
        await runtime.stop()


async def _create(runtime: ServiceRuntime, auth: AuthContext, name: str = "leased") -> Thing:
    """A create as the replica's handler runs it."""
    envelope = Envelope(type="graph.thing.create", org_id=auth.org_id, actor_id=auth.actor_id, role=auth.role,
                        permissions=auth.permissions, scopes=auth.scopes)
    return await app.create_thing(WorkContext(envelope, None, runtime), ThingCreate(type="blog_post", name=name))


async def _limit(bus: BusClient, owner: Account, limit: int) -> None:
    await bus.request(QUOTA_SET, {"metric": "things", "limit": limit}, owner.ctx)


async def test_a_lease_counts_creates_locally_and_gives_its_rest_back_when_its_window_ends(
    bus: BusClient, owner: Account, admin: asyncpg.Connection, replicas: Callable[[], Awaitable[ServiceRuntime]]
) -> None:
    await _limit(bus, owner, 1000)
    runtime = await replicas()
    for n in range(3):
        await _create(runtime, owner.ctx, f"leased {n}")
    held = await _usage(bus, owner)
    assert (held.used, held.reserved) == (0, 100)  # one lease of the default block holds them all, counted on settle
    assert await admin.fetchval("SELECT sum(used) FROM graph.quota_pending WHERE org_id = $1", owner.org_id) == 3
    usage = await _until_unreserved(bus, owner)
    assert usage.used == await _live_things(admin, owner.org_id) == 3
    assert not await admin.fetchval("SELECT count(*) FROM graph.quota_pending WHERE org_id = $1", owner.org_id)


async def test_two_replicas_racing_at_the_limit_never_overshoot(
    bus: BusClient, owner: Account, admin: asyncpg.Connection, replicas: Callable[[], Awaitable[ServiceRuntime]]
) -> None:
    limit = 7
    await _limit(bus, owner, limit)
    first, second = await replicas(), await replicas()
    outcomes = await asyncio.gather(
        *(_create(runtime, owner.ctx, f"racing {n}") for n in range(2 * limit) for runtime in (first, second)),
        return_exceptions=True,
    )
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert all(isinstance(o, QuotaExceeded) for o in refused), refused
    created = len(outcomes) - len(refused)
    assert 0 < created <= limit
    usage = await _until_unreserved(bus, owner)
    assert usage.used == await _live_things(admin, owner.org_id) == created


async def test_a_replica_killed_holding_a_lease_leaves_usage_exact_once_it_expired(
    bus: BusClient, owner: Account, admin: asyncpg.Connection, migrated: Settings,
    services: dict[str, ServiceRuntime],
) -> None:
    await _limit(bus, owner, 1000)
    process = _spawn("after_commit", migrated, owner, "killed-holding-a-lease")
    assert await asyncio.to_thread(process.wait, 60) == -signal.SIGKILL, process.stderr.read() if process.stderr else ""
    held = await _usage(bus, owner)
    assert (held.used, held.reserved) == (0, 100)  # its committed thing is covered by the lease while it lives
    assert await _live_things(admin, owner.org_id) == 1
    await _until_unreserved(bus, owner)
    graph: GraphState = services["graph"].state
    deadline = time.monotonic() + 15
    while (await _usage(bus, owner)).used != 1:  # the settler (any replica's) settles the dead lease's rows
        assert time.monotonic() < deadline, "the dead replica's lease was never settled"
        await graph.settler.settle_pending(0)
    assert (await _usage(bus, owner)).used == await _live_things(admin, owner.org_id) == 1
    assert not await admin.fetchval("SELECT count(*) FROM graph.quota_pending WHERE org_id = $1", owner.org_id)
