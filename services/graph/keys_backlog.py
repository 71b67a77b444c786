"""At start, seal the secrets of things stored before sealing existed (the backlog the v0005 migration filled).

Batches claimed with `SKIP LOCKED`, so replicas starting together share the work; each thing is rewritten and its
backlog row deleted in one transaction. Runs before the replica answers requests (a start hook in app.py).
"""

from services.graph import keys, repository_keys as repo
from shared.runtime.keyring import keyring_for
from shared.runtime.service import ServiceRuntime


async def seal_backlog(runtime: ServiceRuntime, batch: int = 200) -> int:
    """Seal every backlog thing's secret properties; how many things were rewritten."""
    ring, sealed = keyring_for(runtime), 0
    while True:
        async with runtime.db.transaction() as session:
            claimed = await repo.claim_backlog(session, batch)
            for org_id, thing_id in claimed:
                stored = await repo.stored_properties(session, org_id, thing_id)
                if stored is not None and keys.has_secrets(stored):
                    properties = await keys.seal_secrets(ring, org_id, thing_id, stored, stored)
                    if properties != stored:
                        await repo.rewrite_properties(session, org_id, thing_id, properties)
                        sealed += 1
                await repo.backlog_done(session, org_id, thing_id)
        if len(claimed) < batch:
            return sealed


async def start(runtime: ServiceRuntime) -> None:
    await seal_backlog(runtime)
