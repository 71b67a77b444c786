"""The SQL of runs, their steps, their leases and the executions they add up to.

Runs and steps are org-scoped (RLS). Leases (`run_leases`, no RLS) are what a replica holds while
it runs a run: it renews `expires_at` while it works; a sweeper on any replica takes over a lease
that expired (`FOR UPDATE SKIP LOCKED`: two sweepers never take the same run).
"""

import functools
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.agents.models import run_leases, run_steps, runs
from services.agents.rows import RunRow, StepRow

NOW = sa.func.clock_timestamp()


def _lease_end(seconds: float) -> Any:
    return NOW + sa.func.make_interval(0, 0, 0, 0, 0, 0, seconds)


def _bound(columns: tuple[str, ...]) -> dict[str, Any]:
    """Bind parameters for these columns of `runs` (`run_<column>`: a column's own name is the statement's)."""
    return {column: sa.bindparam(f"run_{column}", type_=runs.c[column].type) for column in columns}


def _params(values: dict[str, Any], **others: Any) -> dict[str, Any]:
    return {**{f"run_{column}": value for column, value in values.items()}, **others}


@functools.lru_cache(maxsize=16)
def _insert_run(columns: tuple[str, ...]) -> sa.Select:
    """The run and its lease (built once per set of columns: a statement with CTEs is costly to build, and
    costlier to compile, on every run)."""
    run = sa.insert(runs).values(_bound(columns)).returning(runs).cte("run")
    lease = sa.insert(run_leases).from_select(
        ["run_id", "org_id", "owner", "expires_at", "takeovers"],
        sa.select(run.c.id, run.c.org_id, sa.bindparam("lease_owner", type_=sa.Text),
                  NOW + sa.func.make_interval(0, 0, 0, 0, 0, 0, sa.bindparam("lease_seconds", type_=sa.Float)),
                  sa.literal(0)),
    ).cte("lease")
    return sa.select(run).add_cte(lease)


async def insert_run(session: AsyncConnection, values: dict[str, Any], owner: str, lease_seconds: float) -> RunRow:
    """The run and its lease, in one statement."""
    statement = _insert_run(tuple(values))
    return RunRow.of((await session.execute(statement, _params(values, lease_owner=owner,
                                                               lease_seconds=lease_seconds))).one())


async def get_run(session: AsyncConnection, org_id: UUID, run_id: UUID, *, for_update: bool = False) -> RunRow | None:
    statement = sa.select(runs).where(runs.c.org_id == org_id, runs.c.id == run_id)
    if for_update:
        statement = statement.with_for_update()
    row = (await session.execute(statement)).first()
    return RunRow.of(row) if row else None


UNFINISHED = ("running", "waiting")
"""A waiting run (parked for its caller's answer, run_waiting.py) has not finished: it is not in totals or history."""


async def list_runs(
    session: AsyncConnection, org_id: UUID, *, agent_id: UUID | None, conversation_id: UUID | None, status: str | None,
    cursor: UUID | None, limit: int, finished_only: bool = False,
) -> list[RunRow]:
    statement = sa.select(runs).where(runs.c.org_id == org_id).order_by(runs.c.id).limit(limit)
    for column, value in ((runs.c.agent_id, agent_id), (runs.c.conversation_id, conversation_id),
                          (runs.c.status, status)):
        if value is not None:
            statement = statement.where(column == value)
    if finished_only:
        statement = statement.where(runs.c.status.not_in(UNFINISHED))
    if cursor is not None:
        statement = statement.where(runs.c.id > cursor)
    return [RunRow.of(row) for row in await session.execute(statement)]


async def update_run(session: AsyncConnection, org_id: UUID, run_id: UUID, values: dict[str, Any]) -> RunRow:
    statement = sa.update(runs).where(runs.c.org_id == org_id, runs.c.id == run_id).values(**values).returning(runs)
    return RunRow.of((await session.execute(statement)).one())


async def finish_run(session: AsyncConnection, org_id: UUID, run_id: UUID, values: dict[str, Any]) -> RunRow | None:
    """Mark a running (or waiting: a cancel) run finished and drop its lease; None when it was finished already (by
    a sweeper)."""
    statement = _finish_run(tuple(values))
    row = (await session.execute(statement, _params(values, finish_org=org_id, finish_run=run_id))).first()
    return RunRow.of(row) if row else None


@functools.lru_cache(maxsize=16)
def _finish_run(columns: tuple[str, ...]) -> sa.Select:
    """`finish_run`'s statement, one per set of columns (built once, as `_insert_run`)."""
    run_id = sa.bindparam("finish_run", type_=sa.Uuid)
    finished = (
        sa.update(runs).where(runs.c.org_id == sa.bindparam("finish_org", type_=sa.Uuid), runs.c.id == run_id,
                              runs.c.status.in_(("running", "waiting")))
        .values({**_bound(columns), "finished_at": NOW}).returning(runs).cte("finished")
    )
    dropped = sa.delete(run_leases).where(run_leases.c.run_id == run_id).cte("dropped")  # whichever way it went
    return sa.select(finished).add_cte(dropped)


async def insert_steps(session: AsyncConnection, org_id: UUID, run_id: UUID, first_seq: int,
                       steps: list[tuple[str, int, dict[str, Any]]]) -> list[StepRow]:
    """Store steps (kind, iteration, body) numbered from `first_seq`, in one statement (the driver's batched
    VALUES: compiled once, not once per count of steps); in seq order."""
    rows = [{"org_id": org_id, "run_id": run_id, "seq": first_seq + i, "kind": kind, "iteration": iteration,
             "body": body} for i, (kind, iteration, body) in enumerate(steps)]
    result = await session.execute(_INSERT_STEPS, rows)
    return sorted((StepRow.of(row) for row in result), key=lambda row: row.seq)


_INSERT_STEPS = sa.insert(run_steps).returning(run_steps)


async def steps_of(session: AsyncConnection, org_id: UUID, run_id: UUID, *, after_seq: int = 0,
                   limit: int = 10_000) -> list[StepRow]:
    statement = (
        sa.select(run_steps).where(run_steps.c.org_id == org_id, run_steps.c.run_id == run_id,
                                   run_steps.c.seq > after_seq)
        .order_by(run_steps.c.seq).limit(limit)
    )
    return [StepRow.of(row) for row in await session.execute(statement)]


async def renew_leases(session: AsyncConnection, owner: str, run_ids: list[UUID], lease_seconds: float) -> set[UUID]:
    """Extend this replica's leases; answer the runs whose lease another replica holds now.

    A run missing from both is finished: `finish_run` dropped its lease in the transaction that ended it, and the
    replica may still be publishing its last steps — that run is not lost, it must not be stopped.
    """
    if not run_ids:
        return set()
    statement = (
        sa.update(run_leases).where(run_leases.c.run_id.in_(run_ids), run_leases.c.owner == owner)
        .values(expires_at=_lease_end(lease_seconds)).returning(run_leases.c.run_id)
    )
    kept = set((await session.execute(statement)).scalars())
    others = [run_id for run_id in run_ids if run_id not in kept]
    if not others:
        return set()
    taken = sa.select(run_leases.c.run_id).where(run_leases.c.run_id.in_(others), run_leases.c.owner != owner)
    return set((await session.execute(taken)).scalars())


_TAKE_EXPIRED = sa.text("""
    UPDATE agents.run_leases SET owner = :owner, takeovers = takeovers + 1,
           expires_at = clock_timestamp() + make_interval(secs => :lease_seconds)
    WHERE run_id IN (SELECT run_id FROM agents.run_leases WHERE expires_at < clock_timestamp()
                     AND NOT (run_id = ANY(CAST(:working AS uuid[])))
                     ORDER BY expires_at LIMIT :limit FOR UPDATE SKIP LOCKED)
    RETURNING run_id, org_id, takeovers
""")


async def take_expired_leases(session: AsyncConnection, owner: str, lease_seconds: float, limit: int,
                              working: list[UUID]) -> list[tuple[UUID, UUID, int]]:
    """Take over up to `limit` expired leases, not those of the runs in `working` (the sweeper's replica is still
    working on them: their renewal was late): (run id, org id, takeovers so far)."""
    result = await session.execute(_TAKE_EXPIRED, {"owner": owner, "lease_seconds": lease_seconds, "limit": limit,
                                                   "working": [str(run_id) for run_id in working]})
    return [(row.run_id, row.org_id, row.takeovers) for row in result]


async def drop_lease(session: AsyncConnection, run_id: UUID) -> None:
    await session.execute(sa.delete(run_leases).where(run_leases.c.run_id == run_id))


async def execution_totals(session: AsyncConnection, org_id: UUID, since: datetime | None, group: str | None) -> list[Any]:
    """Finished runs summed, overall (`group` None) or by `model` / `agent_slug`."""
    key = runs.c[group] if group else sa.literal("all")
    statement = (
        sa.select(
            key.label("key"), sa.func.count().label("runs"),
            sa.func.count().filter(runs.c.status == "failed").label("failed"),
            sa.func.coalesce(sa.func.sum(runs.c.input_tokens), 0).label("input_tokens"),
            sa.func.coalesce(sa.func.sum(runs.c.output_tokens), 0).label("output_tokens"),
            sa.func.coalesce(sa.func.sum(runs.c.cost), 0).label("cost"),
            sa.func.coalesce(sa.func.avg(runs.c.latency_ms), 0).label("latency_ms_avg"),
        )
        .where(runs.c.org_id == org_id, runs.c.status.not_in(UNFINISHED))
        .group_by(key)
    )
    if since is not None:
        statement = statement.where(runs.c.created_at >= since)
    return list(await session.execute(statement))


async def release_leases(session: AsyncConnection, owner: str, run_ids: list[UUID]) -> None:
    """Let the leases expire now, for another replica to take over at its next sweep."""
    await session.execute(sa.update(run_leases).where(run_leases.c.run_id.in_(run_ids), run_leases.c.owner == owner)
                          .values(expires_at=NOW))


async def park_run(session: AsyncConnection, org_id: UUID, run_id: UUID, values: dict[str, Any]) -> RunRow | None:
    """A running run now waiting for its caller (run_waiting.py): its lease dropped; None when it ended meanwhile."""
    statement = (
        sa.update(runs).where(runs.c.org_id == org_id, runs.c.id == run_id, runs.c.status == "running")
        .values(**values, status="waiting").returning(runs)
    )
    row = (await session.execute(statement)).first()
    await session.execute(sa.delete(run_leases).where(run_leases.c.run_id == run_id))
    return RunRow.of(row) if row else None


async def wake_run(session: AsyncConnection, org_id: UUID, run_id: UUID, owner: str,
                   lease_seconds: float) -> RunRow | None:
    """A waiting run running again under `owner`'s lease; None when it was not waiting."""
    statement = (
        sa.update(runs).where(runs.c.org_id == org_id, runs.c.id == run_id, runs.c.status == "waiting")
        .values(status="running", waiting=None).returning(runs)
    )
    row = (await session.execute(statement)).first()
    if row is None:
        return None
    await session.execute(sa.insert(run_leases).values(
        run_id=run_id, org_id=org_id, owner=owner, expires_at=_lease_end(lease_seconds), takeovers=0))
    return RunRow.of(row)
