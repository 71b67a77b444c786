"""The job workers of one agents replica: `slots` jobs at once from its queues, on time, never one job twice.

- Claims: one statement takes up to the free slots' worth of due jobs (`FOR UPDATE SKIP LOCKED`,
  highest priority first), as `claimed` with a lease; they are marked `running` as they start.
- On time: the dispatcher sleeps until the next `run_at` or lease end of its queues (one query),
  and `NOTIFY agents_jobs` (sent when a job is enqueued or retried) wakes it at once, so a
  scheduled job starts within milliseconds of its time, not at the next poll.
- Never twice at once: a heartbeat renews the leases of the jobs it holds; a job it no longer holds
  (cancelled, or its lease taken over) has its run cancelled, and so has every run once the
  heartbeat cannot reach the database for a lease (the worker fences itself before another takes over).
- A dead worker: its jobs' leases pass, and any worker of the queue ends that attempt (counted) as
  failed, retried after the backoff, or dead when the attempts are spent.
- Outcomes are recorded in group commits: what ended while the last commit ran goes in the next,
  with its `task_event`s, in one transaction.
"""

import asyncio
import logging
import os
import random
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg

from services.agents import repository_jobs as repo
from services.agents.job_handlers import JobHandler
from services.agents.jobs import JOB_EVENT, job_event
from services.agents.models_jobs import JobRow
from shared.kernel.envelope import Protocol
from shared.kernel.errors import Forbidden, InvalidRequest, NotFound, OneError, Unauthenticated
from shared.kernel.ids import uuid7
from shared.runtime.db import app_url, plain_url
from shared.runtime.outbox import event_message
from shared.runtime.service import ServiceRuntime

log = logging.getLogger(__name__)

_RECHECK = 0.02
"""The shortest wait when a due job was not claimable (another worker's claim holds it; a passed lease waits for
the next recovery round), so the dispatcher does not spin."""
PERMANENT = (InvalidRequest, NotFound, Forbidden, Unauthenticated)
"""Errors no retry can mend: the attempt ends the job `dead` at once."""


@dataclass(frozen=True)
class WorkerPolicy:
    queues: tuple[str, ...] = ("default",)
    slots: int = 4
    lease: float = 30.0
    backoff_base: float = 2.0
    backoff_max: float = 3600.0
    poll_max: float = 5.0
    """The longest the dispatcher sleeps without a NOTIFY (it may have missed one while reconnecting)."""
    stop_grace: float = 10.0

    @classmethod
    def from_settings(cls, settings: Any) -> "WorkerPolicy":
        return cls(tuple(settings.agents_jobs_queues), settings.agents_jobs_slots, settings.agents_jobs_lease,
                   settings.agents_jobs_backoff_base, settings.agents_jobs_backoff_max, settings.agents_jobs_poll_max,
                   settings.agents_jobs_stop_grace)

    def backoff(self, attempts: int) -> float:
        """Seconds before the next attempt after `attempts` failed: exponential, capped, jittered (50-100 %)."""
        delay = min(self.backoff_max, self.backoff_base * 2.0 ** max(0, attempts - 1))
        return delay * random.uniform(0.5, 1.0)


@dataclass
class _Held:
    job: JobRow
    task: asyncio.Task[None] | None = None
    valid_until: float = field(default=0.0)  # monotonic: the lease as this worker last renewed it


class JobWorker:
    def __init__(self, runtime: ServiceRuntime, handlers: Mapping[str, JobHandler], policy: WorkerPolicy,
                 name: str | None = None) -> None:
        self.runtime = runtime
        self.handlers = handlers
        self.policy = policy
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{uuid7().hex[-6:]}"
        self.held: dict[UUID, _Held] = {}
        self.completed = 0
        self._wake = asyncio.Event()
        self._ended: list[tuple[_Held, repo.Outcome]] = []
        self._ended_signal = asyncio.Event()
        self._stopping = False
        self._listener: asyncpg.Connection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._last_recovery = 0.0
        self._listen_tried = -float("inf")

    async def start(self) -> None:
        await self._listen()
        self._tasks = [asyncio.create_task(loop(), name=f"jobs-{loop.__name__}-{self.name}")
                       for loop in (self._dispatch, self._heartbeat, self._record)]

    async def stop(self) -> None:
        """Claim nothing more; give running jobs `stop_grace` to end, then release the rest for another worker."""
        self._stopping = True
        self._wake.set()
        if self._tasks:  # the dispatcher finishes its round, so no job is left claimed but not started
            await asyncio.gather(self._tasks[0], return_exceptions=True)
        running = [h.task for h in self.held.values() if h.task is not None]
        if running:
            _, late = await asyncio.wait(running, timeout=self.policy.stop_grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._flush()  # what ended (and what was released) is recorded before the replica goes
        if self._listener is not None:
            await self._listener.close()

    # waking up

    async def _listen(self) -> None:
        now = time.monotonic()
        if now - self._listen_tried < self.policy.poll_max:
            return
        self._listen_tried = now
        try:
            self._listener = await asyncpg.connect(plain_url(app_url(self.runtime.settings)))
            await self._listener.add_listener(repo.CHANNEL, self._notified)
        except (OSError, asyncpg.PostgresError) as error:  # the poll still finds due jobs; the next start listens
            log.warning("jobs %s: no LISTEN connection (%r); polling every %.1f s", self.name, error,
                        self.policy.poll_max)
            self._listener = None

    def _notified(self, _connection: Any, _pid: int, _channel: str, queue: str) -> None:
        if queue in self.policy.queues:
            self._wake.set()

    async def _dispatch(self) -> None:
        while not self._stopping:
            self._wake.clear()
            if self._listener is None or self._listener.is_closed():
                await self._listen()  # a lost LISTEN connection: until it is back, the timer and the poll cover
            try:
                delay = await self._claim_and_start()
            except Exception:
                log.exception("jobs %s: dispatch failed", self.name)
                delay = 1.0
            if delay:
                try:
                    await asyncio.wait_for(self._wake.wait(), delay)
                except TimeoutError:
                    pass

    async def _claim_and_start(self) -> float:
        """Start what is due in the free slots; the seconds to wait before looking again (0: at once)."""
        running = sum(1 for h in self.held.values() if h.task is not None and not h.task.done())
        free = self.policy.slots - running
        if free <= 0:
            return self.policy.poll_max  # a run that ends wakes the dispatcher
        now = time.monotonic()
        if now - self._last_recovery >= min(1.0, self.policy.lease / 4):
            self._last_recovery = now
            await self._end_expired()
        async with self.runtime.db.transaction() as session:
            await repo.as_worker(session)
            claimed = await repo.claim(session, self.policy.queues, self.name, free, self.policy.lease)
            if len(claimed) < free:
                until_next = await repo.seconds_to_next(session, self.policy.queues)
                wait = self.policy.poll_max if until_next is None else until_next
            else:
                wait = 0.0
        if claimed:
            await self._start(claimed, now)
        return min(self.policy.poll_max, max(_RECHECK, wait)) if len(claimed) < free else 0.0

    async def _start(self, claimed: Sequence[JobRow], renewed_at: float) -> None:
        for job in claimed:
            self.held[job.id] = _Held(job, valid_until=renewed_at + self.policy.lease)
        async with self.runtime.db.transaction() as session:
            await repo.as_worker(session)
            started = await repo.start(session, [job.id for job in claimed], self.name)
        for job in claimed:
            held = self.held[job.id]
            if job.id in started:
                held.task = asyncio.create_task(self._run(held), name=f"job-{job.id}")
            else:  # cancelled between the claim and the start
                del self.held[job.id]

    # running

    async def _run(self, held: _Held) -> None:
        job = held.job
        handler = self.handlers.get(job.kind)
        try:
            if handler is None:
                raise RuntimeError(f"no handler of kind {job.kind!r} in worker {self.name}")
            ctx = self.runtime.background(job.org_id, on_behalf_of=job.enqueued_by, correlation_id=job.id)
            result = await handler(ctx, job)
            outcome = repo.Outcome(job.id, "completed", result=result or {})
        except asyncio.CancelledError:
            if job.id not in self.held:
                raise  # lost (cancelled by a person, or the lease taken over): nothing to record
            outcome = repo.Outcome(job.id, "pending", error=f"released: worker {self.name} stopped")
        except Exception as error:
            outcome = self._failure(job, error)
        self._ended.append((held, outcome))
        self._ended_signal.set()
        self._wake.set()  # a slot is free

    def _failure(self, job: JobRow, error: Exception) -> repo.Outcome:
        if isinstance(error, OneError):
            text = f"{error.code}: {error.message}"
        else:
            log.exception("job %s (%s) failed", job.id, job.kind, exc_info=error)
            text = f"{type(error).__name__}: {error}"
        if isinstance(error, PERMANENT) or job.attempts >= job.max_attempts:
            return repo.Outcome(job.id, "dead", error=text[:2000])
        return repo.Outcome(job.id, "failed", error=text[:2000], delay=self.policy.backoff(job.attempts))

    # recording

    async def _record(self) -> None:
        while True:
            await self._ended_signal.wait()
            self._ended_signal.clear()
            try:
                await self._flush()
            except Exception:
                log.exception("jobs %s: recording outcomes failed; retrying", self.name)
                self._ended_signal.set()
                await asyncio.sleep(0.5)

    async def _flush(self) -> None:
        """One transaction for every outcome so far, with their events (a group commit)."""
        ended, self._ended = self._ended, []
        if not ended:
            return
        try:
            async with self.runtime.db.transaction() as session:
                await repo.as_worker(session)
                rows = await repo.finish(session, [outcome for _, outcome in ended], self.name)
                await self._log_events(session, rows)
        except BaseException:
            self._ended = ended + self._ended
            raise
        for held, _ in ended:
            self.held.pop(held.job.id, None)
        self.completed += sum(1 for row in rows if row.state == "completed")

    async def _log_events(self, session: Any, rows: Sequence[JobRow]) -> None:
        actions = {"completed": "completed", "failed": "failed", "dead": "dead", "pending": "released"}
        messages = [
            event_message(JOB_EVENT, row.org_id, row.enqueued_by, job_event(row, actions[row.state]).model_dump(
                mode="json"), Protocol.NATIVE, None)
            for row in rows
        ]
        await self.runtime.outbox.add_many(session, messages)
        if messages and self.runtime.relay is not None:
            self.runtime.relay.wake()

    async def _end_expired(self) -> None:
        """End the attempts of workers that stopped renewing their leases (died): retried, or dead."""
        async with self.runtime.db.transaction() as session:
            await repo.as_worker(session)
            expired = await repo.expired(session, self.policy.queues)
            if not expired:
                return
            outcomes = []
            for job in expired:
                error = f"lease expired: worker {job.claimed_by} stopped renewing it during attempt {job.attempts}"
                dead = job.attempts >= job.max_attempts
                outcomes.append(repo.Outcome(job.id, "dead" if dead else "failed", error=error,
                                             delay=0.0 if dead else self.policy.backoff(job.attempts)))
            rows = await repo.end_expired(session, outcomes)
            await self._log_events(session, rows)
        log.warning("jobs %s: ended %d attempt(s) whose worker stopped renewing its lease", self.name, len(rows))

    # holding

    async def _heartbeat(self) -> None:
        period = self.policy.lease / 3
        while True:
            await asyncio.sleep(period)
            held = [job_id for job_id, h in self.held.items() if h.task is not None]
            if not held:
                continue
            asked_at = time.monotonic()
            try:
                async with self.runtime.db.transaction() as session:
                    await repo.as_worker(session)
                    kept = await repo.extend_leases(session, held, self.name, self.policy.lease)
            except Exception as error:
                log.warning("jobs %s: could not renew leases: %r", self.name, error)
                self._fence(time.monotonic())
                continue
            for job_id in held:
                entry = self.held.get(job_id)
                if entry is None:
                    continue
                if job_id in kept:
                    entry.valid_until = asked_at + self.policy.lease
                elif entry.task is not None and not entry.task.done():  # lost: cancelled, or taken over
                    del self.held[job_id]
                    entry.task.cancel()

    def _fence(self, now: float) -> None:
        """Stop the runs whose lease may have passed: another worker may take those jobs over now."""
        margin = min(1.0, self.policy.lease / 10)
        for job_id, entry in list(self.held.items()):
            if entry.task is not None and not entry.task.done() and now >= entry.valid_until - margin:
                del self.held[job_id]
                entry.task.cancel()
