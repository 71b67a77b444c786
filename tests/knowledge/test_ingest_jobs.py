"""The ingestion queue: one job per thing at a time, a slow run never overwriting newer chunks,
debounced requests that keep their privacy, retries with back-off, the spec's `content_changed`,
and who a job acts as."""

import asyncio
from types import SimpleNamespace
from typing import Any
from uuid import UUID

import asyncpg
import pytest
import sqlalchemy as sa

from services.knowledge import ingest, jobs, repository_jobs as jobs_repo
from services.knowledge.models import ingest_jobs
from shared.contracts.eventlog import APPEND
from shared.contracts.graph import THING_UPDATE
from shared.contracts.knowledge import INGEST_STATUS, EmbeddingRejected, EmbeddingUnavailable
from shared.kernel.envelope import Envelope
from shared.kernel.ids import uuid7
from shared.runtime.client import BusClient
from shared.runtime.context import service_actor_id
from shared.runtime.service import ServiceRuntime
from tests.knowledge.conftest import chunks_of, make_thing, outbox_events, settled
from tests.tenancy.conftest import Account


class Rollback(Exception):
    """Ends a test's transaction without committing: the queue is shared by every org and replica."""


def a_job(org_id: UUID, thing_id: UUID, **fields: Any) -> dict[str, Any]:
    return {"org_id": org_id, "thing_id": thing_id, "action": "ingest", "fields": None, "force": False,
            "vector_only": False, "store_text": False, "trigger": "test", "actor_id": None, "delay_ms": 0, **fields}


async def test_a_things_next_job_waits_until_the_running_one_ends(services: dict[str, ServiceRuntime]) -> None:
    org_id, thing_id = uuid7(), uuid7()
    with pytest.raises(Rollback):
        async with services["knowledge"].db.transaction() as session:
            (older,) = await jobs_repo.enqueue(session, [a_job(org_id, thing_id)])
            await session.execute(sa.update(ingest_jobs).where(ingest_jobs.c.id == older.id).values(status="running"))
            (newer,) = await jobs_repo.enqueue(session, [a_job(org_id, thing_id)])
            assert newer.id != older.id
            # first in line of the whole queue, yet not claimable while the older job runs
            await session.execute(sa.update(ingest_jobs).where(ingest_jobs.c.id == newer.id).values(
                not_before=sa.text("'2000-01-01'::timestamptz")))
            claimed = await jobs_repo.claim(session)
            assert claimed is None or claimed.id != newer.id
            await jobs_repo.finish(session, older.id, "done")
            claimed = await jobs_repo.claim(session)
            assert claimed is not None and claimed.id == newer.id
            raise Rollback


async def test_a_slow_run_never_overwrites_newer_chunks(
    bus: BusClient, owner: Account, services: dict[str, ServiceRuntime], scripted: Any
) -> None:
    """A run that read the thing before a newer run wrote it (a lease that expired under a slow job)
    drops its result at the write and queues the thing again, instead of archiving the newer chunks."""
    runtime = services["knowledge"]
    post = await make_thing(bus, owner.ctx, "blog_post", "Versions", content="ALPHA-4471 is the first version.")
    await settled(bus, owner, post.id, 1)
    held = scripted("ALPHA-4471")
    slow = SimpleNamespace(id=uuid7(), org_id=owner.org_id, thing_id=post.id, action="ingest", fields=None, force=True,
                           vector_only=False, store_text=False, trigger="request", actor_id=owner.ctx.actor_id)
    run = asyncio.create_task(ingest.ingest_thing(runtime, slow))
    await asyncio.wait_for(held.entered.wait(), 30)  # read version 1, now embedding it

    await bus.request(THING_UPDATE, {"id": str(post.id), "properties": {"content": "BETA-9902 is newer."}}, owner.ctx)
    jobs_now = await settled(bus, owner, post.id, 2)
    assert jobs_now[0].status == "done"
    held.release.set()
    outcome = await asyncio.wait_for(run, 30)
    assert outcome.status == "skipped" and "superseded" in (outcome.note or "")
    again = await settled(bus, owner, post.id, 3)  # queued again, as asked (force): from the thing as it is now
    assert again[0].trigger == "request" and again[0].status == "done"
    assert [chunk.text for chunk in await chunks_of(bus, owner, post.id)] == ["BETA-9902 is newer."]


async def test_a_later_event_keeps_a_queued_vector_only_request(services: dict[str, ServiceRuntime]) -> None:
    org_id, thing_id = uuid7(), uuid7()
    with pytest.raises(Rollback):
        async with services["knowledge"].db.transaction() as session:
            await jobs_repo.enqueue(session, [a_job(org_id, thing_id, vector_only=True, trigger="request",
                                                    delay_ms=60_000)])
            (merged,) = await jobs_repo.enqueue(session, [a_job(org_id, thing_id, trigger="event:entity_updated",
                                                                delay_ms=60_000)])
            assert merged.vector_only and not merged.store_text and merged.trigger == "event:entity_updated"
            (merged,) = await jobs_repo.enqueue(session, [a_job(org_id, thing_id, store_text=True, delay_ms=60_000)])
            assert merged.vector_only and not merged.store_text  # asked for both within one debounce: privacy wins
            raise Rollback


async def test_a_transient_failure_is_retried_with_backoff_then_counted_failed(
    bus: BusClient, owner: Account, services: dict[str, ServiceRuntime], monkeypatch: pytest.MonkeyPatch,
    scripted: Any,
) -> None:
    monkeypatch.setattr(services["knowledge"].settings, "knowledge_ingest_max_attempts", 3)
    monkeypatch.setattr(jobs, "RETRY_BASE_SECONDS", 0.2)
    delays: list[tuple[int, float]] = []
    retry_later = jobs_repo.retry_later

    async def recorded(session: Any, job: Any, delay: float, error: str) -> str:
        delays.append((job.attempts, delay))
        return await retry_later(session, job, delay, error)

    monkeypatch.setattr(jobs_repo, "retry_later", recorded)
    failing = scripted("FLAKY-3318", EmbeddingUnavailable("the embedding endpoint is overloaded"))
    post = await make_thing(bus, owner.ctx, "blog_post", "Unlucky", content="FLAKY-3318 cannot be embedded today.")
    (job,) = await settled(bus, owner, post.id, 1)
    assert job.status == "failed" and job.attempts == 3 and failing.calls == 3
    assert job.error == "embedding_unavailable: the embedding endpoint is overloaded"
    assert delays == [(1, 0.2), (2, 0.4)]
    status = await bus.request(INGEST_STATUS, {}, owner.ctx)
    assert status.counts["failed"] == 1 and status.counts["queued"] == status.counts["running"] == 0


async def test_a_permanent_failure_is_not_retried(bus: BusClient, owner: Account, scripted: Any) -> None:
    failing = scripted("REJECT-5120", EmbeddingRejected("the endpoint refused the key"))
    post = await make_thing(bus, owner.ctx, "blog_post", "Refused", content="REJECT-5120 meets a bad key.")
    (job,) = await settled(bus, owner, post.id, 1)
    assert job.status == "failed" and job.attempts == 1 and failing.calls == 1
    assert job.error == "embedding_rejected: the endpoint refused the key"
    assert (await bus.request(INGEST_STATUS, {}, owner.ctx)).counts["failed"] == 1


def content_event(action: str, **payload: Any) -> Envelope:
    return Envelope(type="content_event", org_id=uuid7(), actor_id=uuid7(),
                    payload={"target_id": str(uuid7()), "metadata": {"action": action}, **payload})


@pytest.mark.parametrize(("action", "payload", "queued"), [
    ("updated", {"target_type": "blog_post"}, True),
    ("created", {"target_type": "video"}, True),
    ("deleted", {"target_type": "blog_post"}, True),  # re-read: only the graph's entity_deleted purges
    ("updated", {"metadata": {"action": "updated", "contentType": "blog_post"}}, True),
    ("viewed", {"target_type": "blog_post"}, False),
    ("liked", {"target_type": "blog_post"}, False),
    ("updated", {}, False),  # no thing type: not about a thing
])
def test_content_changed_queues_a_thing_and_interactions_do_not(action: str, payload: dict[str, Any], queued: bool) -> None:
    job = jobs.job_for_event(content_event(action, **payload), 2000)
    assert (job is not None) == queued
    if job is not None:
        assert job["action"] == "ingest" and job["trigger"] == "event:content_event" and job["delay_ms"] == 2000


async def test_a_content_changed_event_re_ingests_the_thing(bus: BusClient, owner: Account) -> None:
    post = await make_thing(bus, owner.ctx, "blog_post", "Evented", content="Kept current by its events.")
    await settled(bus, owner, post.id, 1)
    await bus.request(APPEND, {"type": "content_changed", "target_id": str(post.id), "target_type": "blog_post",
                               "metadata": {"action": "updated", "contentType": "blog_post"}}, owner.ctx)
    jobs_now = await settled(bus, owner, post.id, 2, timeout=30)
    assert jobs_now[0].trigger == "event:content_event" and jobs_now[0].status == "skipped"  # text unchanged


async def test_a_job_acts_as_the_service_for_the_person_who_caused_it(
    bus: BusClient, owner: Account, admin: asyncpg.Connection
) -> None:
    """The job reads the thing as knowledge itself, yet its events name the person whose change
    caused it, and carry the job's id as their correlation."""
    post = await make_thing(bus, owner.ctx, "blog_post", "Attributed", content="GAMMA-5150 is attributed.")
    (job,) = await settled(bus, owner, post.id, 1)
    assert job.status == "done"
    added = [event for event in await outbox_events(admin, owner.org_id, "entity_created")
             if event["payload"]["metadata"].get("sourceThingId") == str(post.id)]
    assert [(event["actor_id"], event["correlation_id"]) for event in added] == [(str(owner.ctx.actor_id), str(job.id))]


async def test_a_job_nobody_caused_acts_as_the_service_alone(services: dict[str, ServiceRuntime]) -> None:
    """No made-up actor: the service's own, with nothing but its grant to read things."""
    job = SimpleNamespace(id=uuid7(), org_id=uuid7(), actor_id=None)
    auth = ingest.job_context(services["knowledge"], job).auth
    assert (auth.org_id, auth.actor_id, auth.role) == (job.org_id, service_actor_id("knowledge"), "service:knowledge")
    assert auth.scopes == ("things:read",) and auth.permissions == ("allow:things:read:0",)
