"""Durable jobs on real Postgres and NATS: priority order, retry with backoff then dead, idempotent
enqueue, a scheduled job on time, two workers never running one job at once, cancel and retry."""

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.agents.models_jobs import JobRow
from shared.contracts.jobs import (
    JOB_CANCEL,
    JOB_GET,
    JOB_LIST,
    JOB_RETRY,
    InvalidJobPayload,
    JobIdempotencyConflict,
    JobNotFound,
    JobStateConflict,
    UnknownJobKind,
)
from shared.kernel.envelope import AuthContext
from shared.kernel.errors import Forbidden, InvalidRequest, Unavailable
from shared.runtime.client import BusClient
from shared.runtime.context import WorkContext
from shared.runtime.service import ServiceRuntime
from tests.agents.jobs_helpers import StartWorker, a_queue, enqueue, job_events, settled, start_worker  # noqa: F401
from tests.graph.conftest import owner, stranger  # noqa: F401 (fixtures)
from tests.tenancy.conftest import Account  # noqa: F401 (fixtures)


async def test_due_jobs_run_highest_priority_first(bus: BusClient, owner: Account, start_worker: StartWorker) -> None:
    queue = a_queue()
    priorities = [0, 5, -3, 10, 5, 1]
    queued = [await enqueue(bus, owner.ctx, f"p{p}", priority=p, queue=queue) for p in priorities]
    ran: list[Any] = []

    async def record(_: WorkContext, job: JobRow) -> dict[str, Any]:
        ran.append(job.id)
        return {}

    await start_worker({"notification.send": record}, queue, slots=1)
    for job in queued:
        await settled(bus, owner.ctx, job.id)
    expected = [job.id for job in sorted(queued, key=lambda j: -j.priority)]  # stable: equal ones in enqueue order
    assert ran == expected


async def test_a_failing_job_is_retried_with_growing_backoff_then_dead(
    bus: BusClient, owner: Account, services: dict[str, ServiceRuntime], start_worker: StartWorker
) -> None:
    queue = a_queue()
    tried: list[float] = []

    async def down(_: WorkContext, job: JobRow) -> None:
        tried.append(time.monotonic())
        raise Unavailable("the endpoint is down")

    await start_worker({"notification.send": down}, queue, backoff_base=0.4)
    job = await enqueue(bus, owner.ctx, queue=queue, max_attempts=3)
    dead = await settled(bus, owner.ctx, job.id, ("dead",))
    assert dead.attempts == 3 and len(tried) == 3
    assert dead.last_error == "unavailable: the endpoint is down" and dead.finished_at is not None
    first, second = tried[1] - tried[0], tried[2] - tried[1]
    assert 0.2 <= first and 0.4 <= second  # base x 2^(n-1), jittered to 50-100 %
    events = [e["payload"]["metadata"] for e in await job_events(services["agents"], owner.org_id)]
    assert [(m["action"], m["attempt"]) for m in events] == [("enqueued", 0), ("failed", 1), ("failed", 2), ("dead", 3)]
    assert events[1]["error"] == "unavailable: the endpoint is down" and "retryAt" in events[1]


async def test_an_error_no_retry_can_mend_ends_the_job_at_once(bus: BusClient, owner: Account,
                                                               start_worker: StartWorker) -> None:
    queue = a_queue()

    async def refused(_: WorkContext, job: JobRow) -> None:
        raise InvalidRequest("the recipient has no inbox")

    await start_worker({"notification.send": refused}, queue)
    job = await enqueue(bus, owner.ctx, queue=queue, max_attempts=5)
    dead = await settled(bus, owner.ctx, job.id, ("dead",))
    assert dead.attempts == 1 and dead.last_error == "invalid: the recipient has no inbox"


async def test_the_same_idempotency_key_answers_the_same_job(bus: BusClient, owner: Account, stranger: Account) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    first = await enqueue(bus, owner.ctx, "remind me", run_at=later.isoformat(), idempotency_key="reminder-42")
    again = await asyncio.gather(*(enqueue(bus, owner.ctx, "remind me", run_at=later.isoformat(),
                                           idempotency_key="reminder-42") for _ in range(5)))
    assert {job.id for job in again} == {first.id}
    listed = await bus.request(JOB_LIST, {}, owner.ctx)
    assert [job.id for job in listed.jobs] == [first.id]
    with pytest.raises(JobIdempotencyConflict):
        await enqueue(bus, owner.ctx, "something else", idempotency_key="reminder-42")
    theirs = await enqueue(bus, stranger.ctx, "remind me", run_at=later.isoformat(), idempotency_key="reminder-42")
    assert theirs.id != first.id  # keys are per org


async def test_a_scheduled_job_fires_within_a_second_of_its_time(
    bus: BusClient, owner: Account, services: dict[str, ServiceRuntime]
) -> None:
    """The service's own workers (the `default` queue), woken by the enqueue's NOTIFY and their timer."""
    run_at = datetime.now(UTC) + timedelta(seconds=2.5)
    job = await enqueue(bus, owner.ctx, "stand-up in 5 minutes", run_at=run_at.isoformat())
    assert job.state == "pending" and job.run_at == run_at
    done = await settled(bus, owner.ctx, job.id)
    assert done.started_at is not None and timedelta(0) <= done.started_at - run_at < timedelta(seconds=1), (
        done.started_at - run_at)
    (notice,) = await job_events(services["agents"], owner.org_id, "notification_event")
    assert notice["payload"]["target_id"] == str(owner.person_id) and notice["actor_id"] == str(owner.person_id)
    assert notice["payload"]["metadata"]["message"] == "stand-up in 5 minutes"
    assert done.result == {"recipient_id": str(owner.person_id), "event_id": notice["id"]}


async def test_two_workers_never_run_one_job_at_once(bus: BusClient, owner: Account, start_worker: StartWorker) -> None:
    queue = a_queue()
    active: set[Any] = set()
    runs: dict[Any, int] = {}
    overlaps: list[Any] = []

    async def exclusive(_: WorkContext, job: JobRow) -> dict[str, Any]:
        if job.id in active:
            overlaps.append(job.id)
        active.add(job.id)
        runs[job.id] = runs.get(job.id, 0) + 1
        await asyncio.sleep(0.005 * (job.priority % 4))
        active.discard(job.id)
        return {}

    jobs = [await enqueue(bus, owner.ctx, queue=queue, priority=i) for i in range(120)]
    workers = [await start_worker({"notification.send": exclusive}, queue, slots=4) for _ in range(2)]
    for job in jobs:
        await settled(bus, owner.ctx, job.id)
    assert not overlaps and set(runs) == {job.id for job in jobs} and set(runs.values()) == {1}
    assert all(worker.completed > 0 for worker in workers)  # both took part (SKIP LOCKED, not one lock-step)


async def test_a_renewed_lease_keeps_a_slow_job_from_a_second_worker(
    bus: BusClient, owner: Account, start_worker: StartWorker
) -> None:
    queue = a_queue()
    runs: list[Any] = []

    async def slow(_: WorkContext, job: JobRow) -> dict[str, Any]:
        runs.append(job.id)
        await asyncio.sleep(3.0)  # three leases long
        return {}

    for _ in range(2):
        await start_worker({"notification.send": slow}, queue, lease=1.0)
    jobs = [await enqueue(bus, owner.ctx, queue=queue) for _ in range(3)]
    for job in jobs:
        done = await settled(bus, owner.ctx, job.id)
        assert done.attempts == 1
    assert sorted(runs) == sorted(job.id for job in jobs)


async def test_cancel_stops_a_pending_or_running_job_and_retry_brings_it_back(
    bus: BusClient, owner: Account, services: dict[str, ServiceRuntime], start_worker: StartWorker
) -> None:
    queue = a_queue()
    entered, stopped = asyncio.Event(), asyncio.Event()

    async def hold(_: WorkContext, job: JobRow) -> dict[str, Any]:
        entered.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            stopped.set()
            raise
        return {}

    await start_worker({"notification.send": hold}, queue, lease=1.5)
    later = await enqueue(bus, owner.ctx, queue=queue, run_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat())
    cancelled = await bus.request(JOB_CANCEL, {"id": str(later.id)}, owner.ctx)
    assert cancelled.state == "cancelled" and cancelled.finished_at is not None
    assert (await bus.request(JOB_CANCEL, {"id": str(later.id)}, owner.ctx)).state == "cancelled"  # idempotent

    running = await enqueue(bus, owner.ctx, queue=queue)
    await asyncio.wait_for(entered.wait(), 10)
    assert (await bus.request(JOB_CANCEL, {"id": str(running.id)}, owner.ctx)).state == "cancelled"
    await asyncio.wait_for(stopped.wait(), 5)  # the worker's heartbeat found it lost and stopped the run
    assert (await bus.request(JOB_GET, {"id": str(running.id)}, owner.ctx)).state == "cancelled"

    retried = await bus.request(JOB_RETRY, {"id": str(later.id)}, owner.ctx)
    assert retried.state == "pending" and retried.attempts == 0 and retried.finished_at is None
    with pytest.raises(JobStateConflict):
        await bus.request(JOB_RETRY, {"id": str(later.id)}, owner.ctx)  # pending: nothing to retry
    actions = [e["payload"]["metadata"]["action"] for e in await job_events(services["agents"], owner.org_id)]
    assert actions.count("cancelled") == 2 and actions[-1] == "retried"


async def test_a_completed_job_cannot_be_cancelled(bus: BusClient, owner: Account) -> None:
    done = await settled(bus, owner.ctx, (await enqueue(bus, owner.ctx)).id)
    with pytest.raises(JobStateConflict):
        await bus.request(JOB_CANCEL, {"id": str(done.id)}, owner.ctx)
    with pytest.raises(JobStateConflict):
        await bus.request(JOB_RETRY, {"id": str(done.id)}, owner.ctx)


async def test_another_orgs_job_is_not_found(bus: BusClient, owner: Account, stranger: Account) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    job = await enqueue(bus, owner.ctx, run_at=later)
    for spec in (JOB_GET, JOB_CANCEL, JOB_RETRY):
        with pytest.raises(JobNotFound):
            await bus.request(spec, {"id": str(job.id)}, stranger.ctx)
    assert (await bus.request(JOB_LIST, {}, stranger.ctx)).jobs == []
    assert (await bus.request(JOB_GET, {"id": str(job.id)}, owner.ctx)).state == "pending"


async def test_bad_requests_are_typed_errors(bus: BusClient, owner: Account) -> None:
    with pytest.raises(UnknownJobKind):
        await enqueue(bus, owner.ctx, kind="shell.exec", payload={"cmd": "rm -rf /"})
    with pytest.raises(InvalidJobPayload) as refused:
        await enqueue(bus, owner.ctx, payload={"message": ""})
    assert refused.value.details["errors"][0]["loc"] == ["message"]
    with pytest.raises(InvalidRequest):
        await enqueue(bus, owner.ctx, run_at="2030-01-01T09:00:00")  # no time zone: which 9 o'clock?
    with pytest.raises(InvalidRequest):
        await enqueue(bus, owner.ctx, max_attempts=0)
    assert (await bus.request(JOB_LIST, {}, owner.ctx)).jobs == []


async def test_a_job_needs_the_permission_of_what_it_does(bus: BusClient, owner: Account) -> None:
    only_jobs = AuthContext(owner.org_id, owner.person_id, "org_user", ("allow:jobs:*:0",))
    with pytest.raises(Forbidden):
        await enqueue(bus, only_jobs, kind="knowledge.ingest", payload={"thing_id": str(owner.org_id)})
    no_jobs = AuthContext(owner.org_id, owner.person_id, "customer", ("allow:knowledge:*:0",))
    with pytest.raises(Forbidden):
        await enqueue(bus, no_jobs)
    assert (await enqueue(bus, only_jobs, run_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat())).kind \
        == "notification.send"
