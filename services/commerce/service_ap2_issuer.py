"""AP2 v2, the credential provider's side: a person of an org grants one of its agents an open payment (or checkout)
mandate.

The platform signs as the org's credential provider (its `issuer` key, published in the org's JWKS so a
merchant org can put it on its trust list); the mandate's `cnf` is the agent's own key, made and sealed
in commerce on the first grant, never handed out. Only a person (or the org's key acting for one) may
grant: a service or an agent cannot give an agent a mandate. The root SD-JWT is kept for the agent to
close for each purchase (the shopping-agent tool). Its `mandate` thing is written after the reply
(ap2_replica.GraphSync).

The schema makes an open payment mandate name a `payment.reference` (the digest of the open checkout
mandate it pays for): a grant naming `checkout_mandate_id` (a checkout mandate granted to the same
agent) gets that one's digest; a grant naming none gets a reference to itself
(`conditional_transaction_id`: a fresh id) and pays only checkouts no checkout mandate authorized.
"""

import time
from datetime import UTC, datetime

from services.commerce import ap2_ontology as onto, repository_ap2 as repo
from services.commerce.ap2 import credentials, schemas
from services.commerce.ap2.verify import OPEN_CHECKOUT_VCT, OPEN_PAYMENT_VCT
from services.commerce.ap2_replica import replica
from services.commerce.service_ap2 import merchant_id, signing_key
from shared.contracts.agents import AGENT_GET
from shared.contracts.commerce.ap2 import GrantedMandate, MandateGrant, MandateRevoke, RevokedMandate
from shared.kernel.envelope import Protocol
from shared.kernel.errors import Forbidden, InvalidRequest, NotFound
from shared.kernel.ids import uuid7
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext


async def grant(ctx: WorkContext, payload: MandateGrant) -> GrantedMandate:
    require(ctx.auth, "mandates", "create")
    if (ctx.auth.role or "").startswith("service:"):
        raise Forbidden("a mandate is granted by a person of the org, not by a service or an agent")
    await ctx.call(AGENT_GET, {"id": str(payload.agent_id)}, protocol=Protocol.NATIVE)  # NotFound: not the org's
    now, checkout = int(time.time()), payload.kind == "checkout"
    rules = list(payload.constraints)
    referenced = any(isinstance(rule, dict) and rule.get("type") == "payment.reference" for rule in rules)
    if payload.checkout_mandate_id is not None and (checkout or referenced):
        raise InvalidRequest("checkout_mandate_id is for a payment mandate without a payment.reference of its own")
    org_id = ctx.auth.org_id
    async with ctx.transaction() as tx:
        if payload.checkout_mandate_id is not None:
            rules.append({"type": "payment.reference",
                          "conditional_transaction_id": await _checkout_digest(tx, payload)})
        elif not checkout and not referenced:
            rules.append({"type": "payment.reference", "conditional_transaction_id": f"one:{uuid7()}"})
        agent_row, _ = await signing_key(tx, "agent", payload.agent_id)
        mandate = {"vct": OPEN_CHECKOUT_VCT if checkout else OPEN_PAYMENT_VCT, "constraints": rules,
                   "cnf": {"jwk": agent_row.public_jwk}, "iat": now, "exp": now + payload.ttl_seconds}
        for name in ("payee", "payment_amount", "payment_instrument"):
            if getattr(payload, name) is not None:
                mandate[name] = getattr(payload, name)
        schema = schemas.OPEN_CHECKOUT if checkout else schemas.OPEN_PAYMENT
        if problems := schemas.errors(schema, mandate):
            raise InvalidRequest(f"not a valid AP2 open {payload.kind} mandate", {"errors": problems[:10]})
        _, issuer_key = await signing_key(tx, "issuer", org_id)
        issuer = merchant_id(org_id)
        credential = credentials.issue_open(issuer_key, mandate, issuer)
        credential_hash = credentials.digest(credentials.parse_chain(credential)[0].sd_jwt)
        expires_at = datetime.fromtimestamp(mandate["exp"], UTC)
        mandate_id = await repo.insert_mandate(tx.session, {
            "id": uuid7(), "org_id": org_id, "kind": "open", "mandate_type": payload.kind, "direction": "granted",
            "agent_id": payload.agent_id, "credential_hash": credential_hash, "claims": mandate,
            "credential": credential, "status": "active", "expires_at": expires_at, "graph_pending": True,
            "actor_id": ctx.auth.actor_id, "issuer": issuer})
        await onto.mandate_event(tx, "created", "open", payload.kind, mandateId=str(mandate_id),
                                 agentId=str(payload.agent_id), credentialHash=credential_hash, constraints=rules)
    replica(ctx.runtime).graph.poke()
    return GrantedMandate(id=mandate_id, agent_id=payload.agent_id, credential=credential,
                          credential_hash=credential_hash, mandate=mandate, issuer=issuer, expires_at=expires_at)


async def _checkout_digest(tx: WorkContext, payload: MandateGrant) -> str:
    """The digest of the open checkout mandate a payment mandate will pay for (granted to the same agent)."""
    granted = await repo.get_granted(tx.session, tx.auth.org_id, payload.checkout_mandate_id)
    if granted is None or granted.claims.get("vct") != OPEN_CHECKOUT_VCT or granted.agent_id != payload.agent_id:
        raise InvalidRequest("checkout_mandate_id names no open checkout mandate granted to this agent",
                             {"checkout_mandate_id": str(payload.checkout_mandate_id)})
    return credentials.digest(credentials.parse_chain(granted.credential)[0].sd_jwt)


async def revoke(ctx: WorkContext, payload: MandateRevoke) -> RevokedMandate:
    """The agent may close the mandate no more (what it closed before stays valid until it expires, minutes)."""
    require(ctx.auth, "mandates", "update")
    status = await repo.revoke_granted(ctx.session, ctx.auth.org_id, payload.id)
    if status is None:
        raise NotFound("no such mandate granted by this org", {"id": str(payload.id)})
    await onto.mandate_event(ctx, "revoked", "open", mandateId=str(payload.id))
    return RevokedMandate(id=payload.id, status=status)
