"""AP2 V1 compatibility: a V1 IntentMandate / CartMandate / PaymentMandate accepted structurally, mapped, recorded.

A merchant still spoken to in V1 (`ap2` 0.1.x) gets an answer instead of a parse error: the message is
checked against the V1 types (ap2/v1.py), mapped to `mandateType: intent|cart`, stored as an accepted
mandate (`version` 1, `signed` false unless this merchant verified its own cart signature, a user's
credential presentation never kept), evented (`mandate_event` `accepted`, `version: 1`) and given its
`mandate` thing after the reply like every mandate. It pays nothing: payments take AP2 v2 chains.
"""

import time

from services.commerce import ap2_ontology as onto, repository_ap2 as repo
from services.commerce.ap2 import v1
from services.commerce.ap2_replica import replica
from services.commerce.service_ap2 import PUBLISHED_ROLES, merchant_id
from shared.contracts.commerce.ap2 import MandateRefused, V1Mandate, V1MandateAccept
from shared.kernel.ids import uuid7
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext


async def accept(ctx: WorkContext, payload: V1MandateAccept) -> V1Mandate:
    require(ctx.auth, "mandates", "present")
    org_id = ctx.auth.org_id
    try:
        v1_type, message = v1.unwrap(payload.mandate, payload.type)
        parsed, mapped = v1.read(v1_type, message, time.time())
    except MandateRefused as refused:
        async with ctx.transaction() as tx:
            await onto.mandate_event(tx, "rejected", "v1", payload.type or "unknown", version=1,
                                     reason=refused.details.get("reason"))
        raise
    credential_hash = v1.credential_hash(message)
    async with ctx.transaction() as tx:
        keys = await repo.public_keys(tx.session, org_id, PUBLISHED_ROLES)
        signed = v1.merchant_signed(parsed, {"keys": keys}, merchant_id(org_id))
        kind = "open" if v1_type == "IntentMandate" else "closed"
        mandate_id = await repo.insert_mandate(tx.session, {
            "id": uuid7(), "org_id": org_id, "kind": kind, "mandate_type": "payment" if v1_type == "PaymentMandate"
            else mapped["mandateType"], "direction": "accepted", "credential_hash": credential_hash,
            "claims": {**v1.stored_claims(parsed), "mapped": mapped}, "status": "accepted", "version": 1,
            "signed": signed, "graph_pending": True, "actor_id": ctx.auth.actor_id})
        await onto.mandate_event(tx, "accepted", mapped["mandateType"], v1_type, mandateId=str(mandate_id),
                                 version=1, signed=signed, signaturePresent=v1.signature_present(parsed),
                                 credentialHash=credential_hash)
    replica(ctx.runtime).graph.poke()
    return V1Mandate(id=mandate_id, v1_type=v1_type, mandate_type=mapped["mandateType"], signed=signed,
                     signature_present=v1.signature_present(parsed), credential_hash=credential_hash, mapped=mapped)
