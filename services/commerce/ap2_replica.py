"""AP2's per-replica side: what the verification path keeps in memory, and the loop that writes mandates' things.

A presentation's reply waits for its own transaction only (issue #22's `ap2.verify.rate`):
- the org's signing keys, once unsealed, are kept (a key never changes once made);
- each org's trust list is kept `commerce_ap2_trust_ttl` seconds, parsed into keys; a chain whose issuer
  is not among the kept keys re-reads the list before it is refused, so a key trusted a moment ago on
  another replica is never refused for being cached;
- the `mandate` things and the `fulfilled` connection closed -> open are written after the commit by
  `GraphSync`: the transaction marks each mandate `graph_pending`, the loop (woken at once, and every
  `commerce_ap2_graph_poll` seconds for what a dead replica left) creates the org's things in one batch
  (each keyed by its credential hash, so a retry finds them) and the connections (looked up before a
  retry writes one), then marks them done. A graph failure is retried, never undoes a payment.
"""

import logging
import time
from collections import defaultdict
from typing import Any
from uuid import UUID
from weakref import WeakKeyDictionary

from jwcrypto.jwk import JWK

from services.commerce import ap2_ontology as onto, repository_ap2_graph as repo
from services.commerce.ap2 import credentials
from services.commerce.checkout_ontology import GRANTS
from shared.contracts.graph import CONNECTION_CREATE, CONNECTION_QUERY, THING_CREATE_BATCH
from shared.kernel.envelope import Protocol
from shared.kernel.errors import OneError
from shared.kernel.ontology import ConnectionType, ThingType
from shared.runtime.context import service_identity
from shared.runtime.rounds import Rounds
from shared.runtime.service import ServiceRuntime

log = logging.getLogger(__name__)
_BATCH = 100
_LEASE = 30.0
_GIVE_UP = 20
"""Attempts after which a mandate's things are given up on (logged): the payment stands either way."""


class GraphSync(Rounds):
    def __init__(self, runtime: ServiceRuntime) -> None:
        super().__init__("commerce-ap2-graph", batch=_BATCH, poll=runtime.settings.commerce_ap2_graph_poll)
        self.runtime = runtime

    async def round(self) -> int:
        return await self.sync_due()

    async def sync_due(self) -> int:
        async with self.runtime.db.transaction() as session:
            batch = await repo.claim(session, limit=_BATCH, lease=_LEASE)
        by_org: dict[UUID, list[repo.PendingMandate]] = defaultdict(list)
        for row in batch:
            by_org[row.org_id].append(row)
        outcomes = [outcome for org_id, rows in by_org.items() for outcome in await self.sync_org(org_id, rows)]
        if outcomes:
            async with self.runtime.db.transaction() as session:
                await repo.record(session, outcomes)
        return len(batch)

    async def _call(self, org_id: UUID, spec: Any, payload: dict[str, Any]) -> Any:
        ctx = self.runtime.background(org_id)
        auth = service_identity(self.runtime.name, org_id, GRANTS)
        return await ctx.call(spec, payload, auth=auth, protocol=Protocol.NATIVE)

    async def sync_org(self, org_id: UUID, rows: list[repo.PendingMandate]) -> list[tuple[UUID, UUID | None, bool]]:
        """(mandate, thing, done) for each row: things in one batch, then each closed mandate's connection."""
        things = {row.id: row.thing_id for row in rows}
        missing = [row for row in rows if row.thing_id is None]
        if missing:
            try:
                made = await self._call(org_id, THING_CREATE_BATCH, {"things": [_thing(row) for row in missing]})
                things |= {row.id: thing.id for row, thing in zip(missing, made.things, strict=True)}
            except OneError:
                log.exception("commerce ap2: mandate things not written (org %s), will retry", org_id)
                return [(row.id, None, row.attempts >= _GIVE_UP) for row in rows]
        outcomes = []
        for row in rows:
            done = True
            if row.kind == "closed" and row.fulfills is not None:
                done = await self._fulfilled(org_id, row, things[row.id], row.open_thing_id or things.get(row.fulfills))
            outcomes.append((row.id, things[row.id], done or row.attempts >= _GIVE_UP))
        return outcomes

    async def _fulfilled(self, org_id: UUID, row: repo.PendingMandate, closed: UUID | None, open_: UUID | None) -> bool:
        if closed is None or open_ is None:
            return False  # the open mandate's thing comes first (another replica may be writing it)
        try:
            if row.attempts > 1:  # an earlier try may have written it before failing
                found = await self._call(org_id, CONNECTION_QUERY, {"thing_id": str(closed), "direction": "out",
                                                                    "types": [ConnectionType.FULFILLED]})
                if any(link.to_id == open_ for link in found.connections):
                    return True
            metadata = {"protocol": onto.PROTOCOL, "fulfillmentType": "closed_to_open", "kind": row.mandate_type}
            if row.receipt_id is not None:
                metadata["receiptId"] = str(row.receipt_id)
            await self._call(org_id, CONNECTION_CREATE, {"from_id": str(closed), "to_id": str(open_),
                                                         "type": ConnectionType.FULFILLED, "metadata": metadata})
            return True
        except OneError:
            log.exception("commerce ap2: the fulfilled connection was not written (mandate %s), will retry", row.id)
            return False


def _thing(row: repo.PendingMandate) -> dict[str, Any]:
    extra: dict[str, Any] = {"direction": row.direction}
    for name, value in (("agentId", row.agent_id), ("checkoutId", row.checkout_id), ("receiptId", row.receipt_id)):
        if value is not None:
            extra[name] = str(value)
    if row.issuer:
        extra["issuer"] = row.issuer
    mandate_type = row.kind
    if row.version != 2:  # V1: mandateType intent|cart, as mapped (service_ap2_v1.py)
        mapped = row.claims.get("mapped") or {}
        mandate_type = mapped.get("mandateType", row.mandate_type)
        extra |= {"version": row.version, "signed": row.signed, "v1Type": mapped.get("v1Type"),
                  **{k: mapped[k] for k in ("intent", "items", "total", "currency", "cartId", "expiresAt")
                     if k in mapped}}
    properties = onto.mandate_properties(row.id, mandate_type, row.claims, row.credential_hash, row.status,
                                         kind=row.mandate_type, **extra)
    return {"type": ThingType.MANDATE, "name": onto.thing_name(row.kind, row.mandate_type, row.version, row.id),
            "status": "active", "properties": properties,
            "idempotency_key": f"ap2.mandate:{row.kind}:{row.credential_hash}"}


class Ap2Replica:
    """One replica's AP2 state: key and trust caches, the graph sync loop."""

    def __init__(self, runtime: ServiceRuntime) -> None:
        self.runtime = runtime
        self.keys: dict[tuple[UUID, str, UUID], tuple[Any, JWK]] = {}
        self.trusted: dict[UUID, tuple[float, list[tuple[dict[str, Any], JWK]]]] = {}
        self.graph = GraphSync(runtime)

    def trusted_keys(self, org_id: UUID) -> list[tuple[dict[str, Any], JWK]] | None:
        kept = self.trusted.get(org_id)
        return kept[1] if kept and kept[0] > time.monotonic() else None

    def keep_trusted(self, org_id: UUID, jwks: list[dict[str, Any]]) -> list[tuple[dict[str, Any], JWK]]:
        parsed = []
        for jwk in jwks:
            try:
                parsed.append((jwk, credentials.key_of(jwk)))
            except ValueError:  # checked when trusted: only a hand-edited row gets here
                log.warning("commerce ap2: a trusted key of org %s is not usable", org_id)
        self.trusted[org_id] = (time.monotonic() + self.runtime.settings.commerce_ap2_trust_ttl, parsed)
        return parsed


REPLICAS: "WeakKeyDictionary[ServiceRuntime, Ap2Replica]" = WeakKeyDictionary()
"""Each replica's state (two replicas may share a process, e.g. in tests)."""


def replica(runtime: ServiceRuntime) -> Ap2Replica:
    found = REPLICAS.get(runtime)
    if found is None:
        found = REPLICAS[runtime] = Ap2Replica(runtime)
    return found


async def start(runtime: ServiceRuntime) -> None:
    replica(runtime).graph.start()


async def stop(runtime: ServiceRuntime) -> None:
    found = REPLICAS.pop(runtime, None)
    if found is not None:
        await found.graph.stop()
