"""Runs outlive the replica running them: leases renewed while a replica works, taken over when they expire.

Every replica renews the leases of the runs it works on and, on start and every `agents_sweep_interval`,
takes over runs whose lease expired (their replica died or stalled): a run taken over fewer than
`agents_max_takeovers` times resumes from its stored steps (run_lifecycle.execute); one taken over more
often fails cleanly (`orphaned`), so no run stays `running` forever. A replica that loses a lease (it
stalled and another took the run) cancels its own work on that run. A replica that stops releases its
leases at once, so another resumes its runs without waiting for them to expire.
"""

import asyncio
import logging
from uuid import UUID

from services.agents import inference, repository_runs as repo
from services.agents.run_lifecycle import execute
from services.agents.state import AgentsState, of as state_of
from services.agents.steps import StepLog
from shared.contracts.agents import StepKind
from shared.kernel.ontology import EventType
from shared.runtime.service import ServiceRuntime

log = logging.getLogger(__name__)


async def start(runtime: ServiceRuntime) -> None:
    state = state_of(runtime)
    state.leases = asyncio.get_running_loop().create_task(_keep(runtime, state), name="agents-leases")


async def stop(runtime: ServiceRuntime) -> None:
    state = state_of(runtime)
    if state.leases is not None:
        state.leases.cancel()
        await asyncio.gather(state.leases, return_exceptions=True)
    running = list(state.running.items())
    for _, task in running:
        task.cancel()
    await asyncio.gather(*(t for _, t in running), return_exceptions=True)
    if running:
        async with runtime.db.transaction() as session:
            await repo.release_leases(session, state.replica, [run_id for run_id, _ in running])
    await asyncio.gather(*list(state.tasks), return_exceptions=True)
    await state.http.aclose()


async def _keep(runtime: ServiceRuntime, state: AgentsState) -> None:
    settings = runtime.settings
    interval = min(settings.agents_sweep_interval, settings.agents_lease_seconds / 3)
    since_sweep = settings.agents_sweep_interval  # sweep at once on start
    while True:
        try:
            await _renew(runtime, state)
            if since_sweep >= settings.agents_sweep_interval:
                since_sweep = 0.0
                await sweep(runtime)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("agents: lease upkeep failed; trying again")
        await asyncio.sleep(interval)
        since_sweep += interval


async def _renew(runtime: ServiceRuntime, state: AgentsState) -> None:
    mine = list(state.running)
    if not mine:
        return
    async with runtime.db.transaction() as session:
        lost = await repo.renew_leases(session, state.replica, mine, runtime.settings.agents_lease_seconds)
    for run_id in lost:
        task = state.running.get(run_id)
        if task is not None and run_id in state.running:
            log.warning("agents: lost the lease of run %s to another replica; stopping here", run_id)
            task.cancel()


async def sweep(runtime: ServiceRuntime) -> int:
    """Take over the runs whose lease expired: resume them, or fail those taken over too often."""
    state, settings = state_of(runtime), runtime.settings
    async with runtime.db.transaction() as session:
        taken = await repo.take_expired_leases(session, state.replica, settings.agents_lease_seconds, limit=20,
                                               working=[run_id for run_id, task in state.running.items()
                                                        if not task.done()])
    for run_id, org_id, takeovers in taken:
        if takeovers > settings.agents_max_takeovers:
            await fail_orphan(runtime, org_id, run_id, takeovers)
        else:
            state.running[run_id] = state.spawn(execute(runtime, org_id, run_id, resume=True),
                                                name=f"agents-resume-{run_id}")
    return len(taken)


async def fail_orphan(runtime: ServiceRuntime, org_id: UUID, run_id: UUID, takeovers: int) -> None:
    error = {"code": "orphaned", "message": f"the run's replica died {takeovers} times; it was not resumed again"}
    ctx = runtime.background(org_id)
    async with ctx.transaction() as tx:
        run = await repo.finish_run(tx.session, org_id, run_id, {"status": "failed", "error": error})
        if run is None:
            return
        await tx.emit(EventType.AGENT_FAILED, target_id=run.agent_id, metadata={
            "runId": str(run.id), "agentSlug": run.agent_slug, "model": run.model, "error": error})
        last = await repo.steps_of(tx.session, org_id, run_id)
    await inference.settle(ctx, run, max((s.iteration for s in last if s.kind == StepKind.MODEL_CALL), default=0))
    await StepLog(runtime, org_id, run_id, next_seq=(last[-1].seq + 1) if last else 1).add(
        StepKind.RUN_ERROR, run.iterations, data={"status": "failed", "error": error})
