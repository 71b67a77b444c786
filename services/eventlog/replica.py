"""One replica's moving parts, started and stopped with the service: the tail notifier and its share of the ingest."""

from dataclasses import dataclass

from services.eventlog.dead_letters import DeadLetterStore
from services.eventlog.ingest import EventIngest
from services.eventlog.tail import CommitNotifier
from shared.runtime.service import ServiceRuntime


@dataclass
class EventlogReplica:
    """What `runtime.state` holds for the event log: tails wait on `notifier`; `ingest` counts what it stored."""

    notifier: CommitNotifier
    ingest: EventIngest
    dead_letters: DeadLetterStore


async def start_replica(runtime: ServiceRuntime) -> None:
    nc = runtime.broker.connection
    replica = EventlogReplica(CommitNotifier(), EventIngest(runtime.settings), DeadLetterStore(runtime.settings))
    await replica.notifier.start(nc)
    await replica.dead_letters.start(nc)  # first: it creates the stream the ingest's dead letters go into
    await replica.ingest.start(nc)
    runtime.state = replica


async def stop_replica(runtime: ServiceRuntime) -> None:
    replica, runtime.state = runtime.state, None
    if not isinstance(replica, EventlogReplica):  # it never started
        return
    await replica.ingest.stop()
    await replica.dead_letters.stop()
    await replica.notifier.stop()


def replica_of(runtime: ServiceRuntime) -> EventlogReplica:
    replica = runtime.state
    if not isinstance(replica, EventlogReplica):
        raise RuntimeError("the event log's replica is not started")
    return replica
