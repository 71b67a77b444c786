"""Run an event-log ingest in its own process, to be killed on purpose.

`python -m tests.eventlog.ingest_until_killed <app_db_url> <nats_url> <stream> <filter> <durable> <mode> <batch>`
- `after-commit`: SIGKILL itself right after the first commit, before any ack;
- `run`: ingest until killed from outside.
Prints `ready` once the consumer is subscribed.
"""

import asyncio
import os
import signal
import sys

import nats

from services.eventlog.ingest import EventIngest
from services.eventlog.settings import EventlogSettings


async def main(db_url: str, nats_url: str, stream: str, subject: str, durable: str, mode: str, batch: str) -> None:
    settings = EventlogSettings(nats_url=nats_url, app_database_url=db_url, eventlog_batch_size=int(batch), eventlog_ack_wait=2.0)
    nc = await nats.connect(nats_url)

    async def die(_: object) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    ingest = EventIngest(
        settings, stream=stream, subject=subject, durable=durable, after_commit=die if mode == "after-commit" else None
    )
    await ingest.start(nc)
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:8]))
