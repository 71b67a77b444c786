"""A run's steps: stored, then published on the run's step subject, in `seq` order.

Steps of one phase (a completion and the tool calls it asked for; the results of those calls) are
stored in one transaction, then published: a reader never sees a step the database does not hold.
Text deltas are only published (core NATS: best effort, a slow reader loses deltas, never a stored step).
`add_later` stores in the background: the seqs are taken at once, so what is added after comes after, and
each batch (and each delta) is published only once the batch before it was: readers get steps in `seq` order
whichever insert commits first. `stage` adds steps to a transaction of the caller's (the run's last ones go
with its end), `publish` sends them after its commit.
"""

import asyncio
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from services.agents import repository_runs as repo
from services.agents.rows import StepRow
from shared.contracts.agents import RunStep, StepKind, step_subject
from shared.runtime.service import ServiceRuntime

_FIELDS = ("text", "tool_call_id", "tool_name", "arguments", "result", "is_error", "data")


def to_step(row: StepRow) -> RunStep:
    return RunStep(run_id=row.run_id, seq=row.seq, kind=row.kind, iteration=row.iteration, created_at=row.created_at,
                   **{k: v for k, v in row.body.items() if k in _FIELDS})


class StepLog:
    def __init__(self, runtime: ServiceRuntime, org_id: UUID, run_id: UUID, next_seq: int = 1) -> None:
        self.runtime, self.org_id, self.run_id = runtime, org_id, run_id
        self.subject = step_subject(org_id, run_id)
        self.next_seq = next_seq
        self._last: asyncio.Future[list[RunStep]] | None = None  # the batch stored and published last

    async def add(self, kind: StepKind, iteration: int = 0, **body: Any) -> RunStep:
        return (await self.add_many([(kind, iteration, body)]))[0]

    async def add_many(self, steps: list[tuple[StepKind, int, dict[str, Any]]]) -> list[RunStep]:
        """Store the steps in one transaction (one statement), then publish them."""
        return await self.add_later(steps)

    def add_later(self, steps: list[tuple[StepKind, int, dict[str, Any]]]) -> "asyncio.Future[list[RunStep]]":
        """`add_many` in a task of its own, with the steps' seqs taken now."""
        rows = self._rows(steps)
        first, self.next_seq = self.next_seq, self.next_seq + len(rows)
        self._last = asyncio.ensure_future(self._store(first, rows, self._last))
        return self._last

    @staticmethod
    def _rows(steps: list[tuple[StepKind, int, dict[str, Any]]]) -> list[tuple[str, int, dict[str, Any]]]:
        return [(kind.value, iteration, {k: v for k, v in body.items() if v is not None and v != {} and v is not False})
                for kind, iteration, body in steps]

    async def _store(self, first: int, rows: list[tuple[str, int, dict[str, Any]]],
                     before: "asyncio.Future[list[RunStep]] | None") -> list[RunStep]:
        try:
            async with self.runtime.db.transaction(self.org_id) as session:
                stored = [to_step(row) for row in await repo.insert_steps(session, self.org_id, self.run_id, first,
                                                                           rows)]
        except BaseException:
            if self.next_seq == first + len(rows):  # nothing was added since: the seqs are free again
                self.next_seq = first
            raise
        if before is not None:
            await before  # published first (its failure is this batch's too: no reader sees a step out of order)
        for step in stored:
            await self._publish(step)
        return stored

    async def settled(self) -> None:
        """Every batch added so far stored and published (or the first failure among them raised)."""
        if self._last is not None:
            await self._last

    async def stage(self, session: Any, steps: list[tuple[StepKind, int, dict[str, Any]]]) -> list[RunStep]:
        """Store the steps in the caller's transaction; `publish` them once it committed. Call after `settled`."""
        rows = self._rows(steps)
        first, self.next_seq = self.next_seq, self.next_seq + len(rows)
        return [to_step(row) for row in await repo.insert_steps(session, self.org_id, self.run_id, first, rows)]

    async def publish(self, steps: list[RunStep]) -> None:
        await self.settled()
        for step in steps:
            await self._publish(step)

    async def delta(self, text: str, iteration: int) -> None:
        if self._last is not None and not self._last.done():
            await self._last
        await self._publish(RunStep(run_id=self.run_id, seq=self.next_seq, kind=StepKind.TEXT_DELTA, text=text,
                                    iteration=iteration, created_at=datetime.now(UTC)))

    async def _publish(self, step: RunStep) -> None:
        connection = self.runtime.broker.connection
        if connection is not None and connection.is_connected:
            await connection.publish(self.subject, step.model_dump_json(exclude_defaults=True).encode())
