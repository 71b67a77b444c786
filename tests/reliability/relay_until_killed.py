"""Run an outbox relay that SIGKILLs its own process right after the first publish ack.

`python -m tests.reliability.relay_until_killed <app_db_url> <nats_url> <schema> <stream>`:
the row is in JetStream, but the transaction that would mark it sent never commits.
"""

import asyncio
import os
import signal
import sys

import nats

from shared.runtime.db import Database
from shared.runtime.outbox import Outbox, OutboxRelay


async def main(db_url: str, nats_url: str, schema: str, stream: str) -> None:
    db = Database(db_url, pool_size=1)
    nc = await nats.connect(nats_url)

    async def die(_: object) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    relay = OutboxRelay(Outbox(schema), db, nc.jetstream(), stream=stream, after_publish=die)
    await relay.relay_once()
    raise SystemExit("the relay published nothing")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
