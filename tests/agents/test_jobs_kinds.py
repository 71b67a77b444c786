"""The built-in kinds, run by the agents service's own workers: ingestion through the knowledge contract,
expired-data cleanup; each as the service on the enqueuer's behalf."""

import pytest
import sqlalchemy as sa

from shared.contracts.graph import THING_CREATE
from shared.contracts.jobs import JOB_GET, JobNotFound
from shared.contracts.knowledge import INGEST_STATUS
from shared.runtime.client import BusClient
from shared.runtime.service import ServiceRuntime
from tests.agents.jobs_helpers import enqueue, settled
from tests.graph.conftest import owner  # noqa: F401 (fixtures)
from tests.tenancy.conftest import Account  # noqa: F401 (fixtures)


async def test_an_ingest_job_queues_the_things_ingestion_in_knowledge(bus: BusClient, owner: Account) -> None:
    thing = await bus.request(THING_CREATE, {"type": "blog_post", "name": "Hives", "properties": {
        "content": "Winter hives need a windbreak and a dry roof."}}, owner.ctx)
    job = await enqueue(bus, owner.ctx, kind="knowledge.ingest", payload={"thing_id": str(thing.id), "force": True})
    done = await settled(bus, owner.ctx, job.id)
    status = await bus.request(INGEST_STATUS, {"thing_id": str(thing.id)}, owner.ctx)
    assert done.result["knowledge_job_id"] in {str(j.id) for j in status.jobs}


async def test_cleanup_forgets_the_orgs_jobs_that_ended_long_ago(
    bus: BusClient, owner: Account, services: dict[str, ServiceRuntime]
) -> None:
    old = await settled(bus, owner.ctx, (await enqueue(bus, owner.ctx, "long ago")).id)
    recent = await settled(bus, owner.ctx, (await enqueue(bus, owner.ctx, "yesterday")).id)
    async with services["agents"].db.transaction(owner.org_id) as session:
        await session.execute(sa.text("UPDATE agents.jobs SET finished_at = finished_at - interval '40 days' "
                                      "WHERE id = :id"), {"id": old.id})
    cleanup = await enqueue(bus, owner.ctx, kind="cleanup.expired", payload={"older_than_days": 30})
    done = await settled(bus, owner.ctx, cleanup.id)
    assert done.result == {"deleted_jobs": 1}
    with pytest.raises(JobNotFound):
        await bus.request(JOB_GET, {"id": str(old.id)}, owner.ctx)
    assert (await bus.request(JOB_GET, {"id": str(recent.id)}, owner.ctx)).state == "completed"
