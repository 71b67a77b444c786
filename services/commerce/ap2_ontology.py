"""What an AP2 mandate leaves in the ontology (seed 003, "AP2 Protocol"), with `metadata.protocol = "ap2"`.

- events, staged in the work's own transaction: `mandate_event`s (`action`: created, presented, verified,
  rejected with its `reason`, revoked; `mandateType`: open or closed; `kind`: payment or checkout) and, when
  a mandate pays a checkout, the merchant's `payment_event` (`status: processed`, money in `currency`,
  `amountMinor` exact) so revenue by protocol counts AP2;
- things and connections, written by commerce itself after the commit: a `mandate` thing per mandate
  (`properties`: mandateType, kind, constraints, status, credentialHash, never the credential itself)
  and the `fulfilled` connection closed -> open. A graph failure is logged and never undoes a payment.
"""

import logging
from typing import Any
from uuid import UUID

from services.commerce.checkout_ontology import GRANTS
from services.commerce.totals import to_major
from shared.contracts.graph import CONNECTION_CREATE, THING_CREATE
from shared.kernel.envelope import Protocol
from shared.kernel.errors import OneError
from shared.kernel.ontology import ConnectionType, EventType, ThingType
from shared.runtime.context import WorkContext, service_identity

log = logging.getLogger(__name__)
PROTOCOL = "ap2"


async def mandate_event(ctx: WorkContext, action: str, mandate_type: str, kind: str = "payment",
                        **extra: Any) -> None:
    await ctx.emit(EventType.MANDATE_EVENT, metadata={"protocol": PROTOCOL, "action": action,
                                                      "mandateType": mandate_type, "kind": kind, **extra})


async def payment_event(ctx: WorkContext, amount: int, currency: str, **extra: Any) -> None:
    await ctx.emit(EventType.PAYMENT_EVENT, metadata={
        "protocol": PROTOCOL, "status": "processed", "direction": "incoming",
        "amount": float(to_major(amount, currency)), "amountMinor": amount, "currency": currency, **extra})


async def _graph(ctx: WorkContext, spec: Any, payload: dict[str, Any]) -> Any:
    auth = service_identity(ctx.runtime.name, ctx.auth.org_id, GRANTS, on_behalf_of=ctx.auth.actor_id)
    return await ctx.call(spec, payload, auth=auth, protocol=Protocol.NATIVE)


def mandate_properties(mandate_id: UUID, mandate_type: str, claims: dict[str, Any], credential_hash: str,
                       status: str, **extra: Any) -> dict[str, Any]:
    """A `mandate` thing's properties: the claims that say what it allows, never a credential."""
    kept = {key: claims[key] for key in ("vct", "constraints", "payee", "payment_amount", "transaction_id",
                                         "iat", "exp") if key in claims}
    return {"mandateType": mandate_type, "kind": "payment", "protocol": PROTOCOL, "version": 2, "status": status,
            "credentialHash": credential_hash, "mandateId": str(mandate_id), **kept, **extra}


async def mandate_thing(ctx: WorkContext, name: str, properties: dict[str, Any]) -> UUID | None:
    """The mandate's thing (one per credential: its hash is the idempotency key); None if the graph failed."""
    try:
        thing = await _graph(ctx, THING_CREATE, {
            "type": ThingType.MANDATE, "name": name, "status": "active", "properties": properties,
            "idempotency_key": f"ap2.mandate:{properties['mandateType']}:{properties['credentialHash']}"})
        return thing.id
    except OneError:
        log.exception("ap2: the mandate thing was not recorded")
        return None


async def fulfilled(ctx: WorkContext, closed_id: UUID | None, open_id: UUID | None, **metadata: Any) -> None:
    """The `fulfilled` connection closed -> open (skipped when either thing is missing)."""
    if closed_id is None or open_id is None:
        return
    try:
        await _graph(ctx, CONNECTION_CREATE, {
            "from_id": str(closed_id), "to_id": str(open_id), "type": ConnectionType.FULFILLED,
            "metadata": {"protocol": PROTOCOL, "fulfillmentType": "closed_to_open", **metadata}})
    except OneError:
        log.exception("ap2: the fulfilled connection was not recorded")
