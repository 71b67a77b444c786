"""A graph replica in its own process that creates one thing and dies on the way (SIGKILL).

`python -m tests.graph.create_until_killed <mode> <database_url> <nats_url> <api_key> <idempotency_key>`

- `hang`: creates normally; the test kills this process while the insert waits on a row the
  test holds: the quota is reserved, the transaction never commits.
- `after_commit`: kills itself right after the create's transaction committed, before telling
  tenancy how many units it used: the pending settlement row is all that is left.

The replica takes no requests (an empty router: the session's graph answers the bus) and runs no
identity consumer; its reservations expire after 2 seconds.
"""

import asyncio
import os
import signal
import sys
from dataclasses import replace
from typing import Any

from services.graph import app, quota
from services.graph.settings import GraphSettings
from shared.contracts.graph import ThingCreate
from shared.contracts.tenancy import VERIFY_KEY
from shared.kernel.envelope import Envelope
from shared.runtime.context import WorkContext
from shared.runtime.handlers import ServiceRouter
from shared.runtime.service import ServiceRuntime

RESERVATION_TTL = 2.0


async def _die(*_: Any, **__: Any) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


async def main(mode: str, database_url: str, nats_url: str, api_key: str, idempotency_key: str) -> None:
    settings = GraphSettings(database_url=database_url, nats_url=nats_url, graph_quota_reservation_ttl=RESERVATION_TTL,
                             graph_identity_sync=False)
    definition = replace(app.definition, router=ServiceRouter("graph"), on_start=[], on_stop=[])
    runtime = ServiceRuntime(definition, settings)
    await runtime.start(migrate=False)
    auth = (await runtime.bus.request(VERIFY_KEY, {"key": api_key})).auth_context()
    envelope = Envelope(type="graph.thing.create", org_id=auth.org_id, actor_id=auth.actor_id, role=auth.role,
                        permissions=auth.permissions, scopes=auth.scopes)
    if mode == "after_commit":
        quota.settle = _die  # type: ignore[assignment]
    print("creating", flush=True)
    await app.create_thing(WorkContext(envelope, None, runtime),
                           ThingCreate(type="blog_post", name="doomed", idempotency_key=idempotency_key))
    raise SystemExit(f"{mode}: the create finished; the test should have killed it first")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
