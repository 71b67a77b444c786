"""x402's facilitator on the bus: verify and settle a payment once, record it in the ontology, fund the local chain.

`verify` refuses an authorization the replay store has seen (`replayed_payment`) before asking the
facilitator; `settle` claims it in the store first (one transaction, committed before the chain is
asked), so two replicas racing on one payment settle it once, and the chain's own nonce check is
the last word. A claim refused before anything was broadcast is released: the payer may retry it.

What lands in the merchant org (the envelope's org) when a payment settles:
- a `payment_event` `verified` on each successful verify, `processed` on settle (tx hash, network,
  amount, asset, resource, payer), `metadata.protocol = "x402"`. `amount` is money, not atomic
  units: atomic / 10**decimals of the asset (6 for the local dollar and USDC), in `currency` (the
  token's symbol), so revenue by protocol sums x402 with the rest;
- a `payment` thing (protocol x402, amount, currency, status, tx hash), the payer as an
  `external_agent` found or created by its CAIP-10 address, and a `transacted` connection from the
  payer to what was sold: the request's `product_id`, else a `product` thing (protocol x402) found
  or created for the resource's URL.
The graph is written as commerce itself (its own grants), after the settlement is recorded: money
that moved on the chain is never lost to a graph error (that is logged, and the payment has no thing).
"""

import asyncio
import hashlib
import logging
import re
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

from eth_utils import to_checksum_address
from x402.mechanisms.evm.types import ExactEIP3009Payload
from x402.schemas import PaymentPayload, PaymentRequirements, SettleResponse, VerifyResponse
from x402.schemas.errors import SchemeNotFoundError

from services.commerce import repository_x402 as repository
from services.commerce.facilitator import (
    UNSUPPORTED_NETWORK,
    UNSUPPORTED_SCHEME,
    Facilitator,
    LocalFacilitator,
    as_v2,
    build_facilitator,
)
from services.commerce.repository_x402 import PaymentKey
from shared.contracts.commerce.facilitator import (
    ChainBalance,
    ChainBalanceQuery,
    ChainFund,
    FacilitatorRequest,
    PaymentRefused,
    SettleResult,
    Supported,
    VerifyResult,
)
from shared.contracts.graph import CONNECTION_CREATE, THING_CREATE
from shared.kernel.envelope import AuthContext, MessageSpec, Protocol
from shared.kernel.errors import InvalidRequest, OneError
from shared.kernel.ids import uuid7
from shared.kernel.ontology import EventType
from shared.kernel.ontology.metadata import MetadataProtocol
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext, service_identity
from shared.runtime.service import ServiceRuntime

log = logging.getLogger(__name__)
R = TypeVar("R")
X402 = MetadataProtocol.X402.value
REPLAYED = "replayed_payment"
GRAPH_GRANTS = ("things:create", "things:read", "connections:create", "quotas:consume", "quotas:release")
"""What commerce's own identity needs to record a payment in the merchant's graph."""

_facilitators: dict[int, Facilitator] = {}


def facilitator_of(runtime: ServiceRuntime) -> Facilitator:
    """This replica's facilitator, built from its settings on first use (the local chain deploys then)."""
    found = _facilitators.get(id(runtime))
    if found is None:
        found = _facilitators[id(runtime)] = build_facilitator(runtime.settings)
    return found


async def start(runtime: ServiceRuntime) -> None:
    """At commerce start, before taking requests: compile and deploy the local chain's token (off the event loop),
    or only build the HTTP facilitator's client."""
    if id(runtime) not in _facilitators:
        _facilitators[id(runtime)] = await asyncio.to_thread(build_facilitator, runtime.settings)
    found = _facilitators[id(runtime)]
    if isinstance(found, LocalFacilitator):  # an HTTP one is asked when first needed: commerce starts without it
        await found.supported()


async def stop(runtime: ServiceRuntime) -> None:
    found = _facilitators.pop(id(runtime), None)
    if found is not None and not isinstance(found, LocalFacilitator):
        await found.close()


def _dump(model: Any) -> dict[str, Any]:
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")


_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_NONCE = re.compile(r"0x[0-9a-fA-F]{64}")


def _parse(ctx: WorkContext, request: FacilitatorRequest) -> tuple[PaymentPayload, PaymentRequirements, PaymentKey]:
    """x402's models of the request and the payment's replay key; `PaymentRefused` (`invalid_payload`) when the
    payload is not an EIP-3009 authorization of the right shape (x402's scheme would fail on it unexplained)."""
    facilitator = facilitator_of(ctx.runtime)
    payload, requirements = as_v2(request.payment_payload, request.payment_requirements, facilitator.v1_names)
    try:
        authorization = ExactEIP3009Payload.from_dict(payload.payload).authorization
        numbers = (authorization.value, authorization.valid_after, authorization.valid_before, requirements.amount)
        addresses = (authorization.from_address, authorization.to, requirements.pay_to, requirements.asset)
        if not all(str(n).isdigit() for n in numbers) or not all(_ADDRESS.fullmatch(str(a)) for a in addresses) \
                or not _NONCE.fullmatch(str(authorization.nonce)):
            raise ValueError("amounts and times are integers, addresses 0x + 40 hex, the nonce 0x + 64 hex")
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise PaymentRefused("only EIP-3009 `exact` payments are settled here", {
            "reason": "invalid_payload", "error": str(error)[:300]}) from None
    key = PaymentKey(str(requirements.network), requirements.asset.lower(), authorization.from_address.lower(),
                     authorization.nonce.lower())
    return payload, requirements, key


def _money(facilitator: Facilitator, requirements: PaymentRequirements) -> tuple[str, str, int]:
    """The price as money (`amount`, `currency`) and in atomic units."""
    atomic = int(requirements.amount)
    asset = facilitator.asset(str(requirements.network), requirements.asset)
    return f"{Decimal(atomic).scaleb(-asset.decimals).normalize():f}", asset.currency, atomic


def _resource_url(request: FacilitatorRequest, payload: PaymentPayload) -> str | None:
    if request.resource and request.resource.get("url"):
        return str(request.resource["url"])
    return payload.resource.url if payload.resource else None


async def _unsupported(facilitator: Facilitator, requirements: PaymentRequirements) -> str | None:
    """Why the facilitator would not settle these requirements at all (a scheme or network it does not list), if so.

    Asked before x402's scheme, which matches networks by family (`eip155:*`): a mainnet price must not be
    checked against the local chain's signer, even if the signature check would refuse it anyway."""
    kinds = (await facilitator.supported()).kinds
    if not any(kind.scheme == requirements.scheme for kind in kinds):
        return UNSUPPORTED_SCHEME
    if not any(kind.scheme == requirements.scheme and kind.network == requirements.network for kind in kinds):
        return UNSUPPORTED_NETWORK
    return None


async def verify(ctx: WorkContext, request: FacilitatorRequest) -> VerifyResult:
    require(ctx.auth, "payments", "verify")
    payload, requirements, key = _parse(ctx, request)
    facilitator = facilitator_of(ctx.runtime)
    async with ctx.transaction() as tx:
        replayed = await repository.is_claimed(tx.session, key)
    if replayed:
        answer = VerifyResponse(is_valid=False, invalid_reason=REPLAYED, payer=to_checksum_address(key.payer),
                                invalid_message="this authorization was settled (or is being settled) already")
        return VerifyResult(response=_dump(answer))
    unsettled = await _unsupported(facilitator, requirements)
    try:
        answer = (VerifyResponse(is_valid=False, invalid_reason=unsettled, payer=to_checksum_address(key.payer))
                  if unsettled else await facilitator.verify(payload, requirements))
    except SchemeNotFoundError as error:
        answer = VerifyResponse(is_valid=False, invalid_reason=UNSUPPORTED_NETWORK, invalid_message=str(error))
    if answer.is_valid:
        async with ctx.transaction() as tx:
            await tx.emit(EventType.PAYMENT_EVENT, metadata=_metadata(ctx, request, payload, requirements, key,
                                                                        "verified"))
    return VerifyResult(response=_dump(answer))


def _metadata(ctx: WorkContext, request: FacilitatorRequest, payload: PaymentPayload,
              requirements: PaymentRequirements, key: PaymentKey, status: str, **more: Any) -> dict[str, Any]:
    amount, currency, atomic = _money(facilitator_of(ctx.runtime), requirements)
    return {"status": status, "protocol": X402, "scheme": requirements.scheme, "network": key.network,
            "asset": requirements.asset, "amount": amount, "currency": currency, "amountAtomic": str(atomic),
            "payer": to_checksum_address(key.payer), "payTo": requirements.pay_to,
            "resource": _resource_url(request, payload), **more}


async def settle(ctx: WorkContext, request: FacilitatorRequest) -> SettleResult:
    require(ctx.auth, "payments", "settle")
    payload, requirements, key = _parse(ctx, request)
    org_id, settlement_id = ctx.auth.org_id, uuid7()
    async with ctx.transaction() as tx:
        claimed = await repository.claim(tx.session, org_id, settlement_id, key, int(requirements.amount),
                                         requirements.pay_to, _resource_url(request, payload))
    if not claimed:
        answer = SettleResponse(success=False, error_reason=REPLAYED, transaction="", network=key.network,
                                payer=to_checksum_address(key.payer),
                                error_message="this authorization was settled (or is being settled) already")
        return SettleResult(response=_dump(answer))
    facilitator = facilitator_of(ctx.runtime)
    unsettled = await _unsupported(facilitator, requirements)
    try:
        answer = (SettleResponse(success=False, error_reason=unsettled, transaction="", network=key.network,
                                 payer=to_checksum_address(key.payer))
                  if unsettled else await facilitator.settle(payload, requirements))
    except SchemeNotFoundError as error:
        answer = SettleResponse(success=False, error_reason=UNSUPPORTED_NETWORK, error_message=str(error),
                                transaction="", network=key.network)
    except Exception:
        log.exception("x402 settle of %s failed before an answer; the claim stays (it may have been broadcast)", key)
        async with ctx.transaction() as tx:
            await repository.finish(tx.session, org_id, settlement_id, status="failed", tx_hash=None,
                                    error_reason="facilitator_error")
        raise
    if not answer.success:
        async with ctx.transaction() as tx:
            if answer.transaction:
                await repository.finish(tx.session, org_id, settlement_id, status="failed",
                                        tx_hash=answer.transaction, error_reason=answer.error_reason)
            else:  # nothing reached the chain: the authorization is still good
                await repository.release(tx.session, org_id, settlement_id, key)
        return SettleResult(response=_dump(answer))
    metadata = _metadata(ctx, request, payload, requirements, key, "processed", txHash=answer.transaction)
    payment_id = await _record_in_graph(ctx, request, metadata)
    async with ctx.transaction() as tx:
        await repository.finish(tx.session, org_id, settlement_id, status="settled", tx_hash=answer.transaction,
                                payment_id=payment_id)
        await tx.emit(EventType.PAYMENT_EVENT, target_id=payment_id, target_type="payment" if payment_id else None,
                      metadata={**metadata, **({"paymentId": str(payment_id)} if payment_id else {})})
    return SettleResult(response=_dump(answer))


def _graph(ctx: WorkContext, auth: AuthContext, spec: MessageSpec[Any, R], payload: dict[str, Any]) -> Any:
    """A graph request as commerce, in this work's chain (the graph speaks our own protocol, not x402)."""
    return ctx.call(spec, payload, auth=auth, protocol=Protocol.NATIVE)


async def _record_in_graph(ctx: WorkContext, request: FacilitatorRequest, meta: dict[str, Any]) -> UUID | None:
    """The payment, its payer and what was sold, as things (at once); the `transacted` connection between the
    last two. None if the graph failed."""
    auth = service_identity(ctx.runtime.name, ctx.auth.org_id, GRAPH_GRANTS, on_behalf_of=ctx.auth.actor_id)
    network, payer, tx_hash = meta["network"], meta["payer"], meta["txHash"]
    payer_thing = _graph(ctx, auth, THING_CREATE, {
        "type": "external_agent", "name": f"x402 payer {payer}", "status": "active",
        "idempotency_key": f"x402.payer:{network}:{payer.lower()}",
        "properties": {"platform": "custom", "agentId": f"{network}:{payer}", "name": payer,
                       "capabilities": ["x402"], "metadata": {"address": payer, "network": network}},
    })
    payment = _graph(ctx, auth, THING_CREATE, {
        "type": "payment", "name": f"x402 payment {tx_hash}", "status": "active",
        "idempotency_key": f"x402.payment:{network}:{tx_hash}",
        "properties": {"amount": float(meta["amount"]), "currency": meta["currency"], "protocol": X402,
                       "paymentMethod": "crypto", "scheme": meta["scheme"], "network": network, "txHash": tx_hash,
                       "status": "processed", "asset": meta["asset"], "amountAtomic": meta["amountAtomic"],
                       "payer": payer, "payTo": meta["payTo"], "resource": meta["resource"]},
    })
    try:
        payer_made, payment_made, sold = await asyncio.gather(
            payer_thing, payment, _sold(ctx, auth, request.product_id, meta["resource"]))
        await _graph(ctx, auth, CONNECTION_CREATE, {
            "from_id": str(payer_made.id), "to_id": str(sold), "type": "transacted",
            "metadata": {"transactionType": "payment", "protocol": X402, "network": network,
                         "amount": meta["amount"], "currency": meta["currency"], "txHash": tx_hash,
                         "paymentId": str(payment_made.id)},
        })
        return payment_made.id
    except OneError:
        log.exception("x402 payment %s settled but not recorded in the graph of org %s", tx_hash, ctx.auth.org_id)
        return None


async def _sold(ctx: WorkContext, auth: AuthContext, product_id: UUID | None, resource: str | None) -> UUID:
    """What the payer transacted with: the request's product, else the `product` thing standing for the paid
    resource URL (found or created, keyed by the URL's hash)."""
    if product_id is not None:
        return product_id
    url = resource or "x402:unnamed-resource"
    thing = await _graph(ctx, auth, THING_CREATE, {
        "type": "product", "name": url[:500], "status": "active",
        "idempotency_key": f"x402.resource:{hashlib.sha256(url.encode()).hexdigest()[:40]}",
        "properties": {"protocol": X402, "resource": url},
    })
    return thing.id


async def supported(ctx: WorkContext) -> Supported:
    require(ctx.auth, "payments", "read")
    return Supported(response=_dump(await facilitator_of(ctx.runtime).supported()))


def _local(ctx: WorkContext) -> LocalFacilitator:
    found = facilitator_of(ctx.runtime)
    if not isinstance(found, LocalFacilitator):
        raise InvalidRequest("there is no local chain: this commerce settles through an HTTP facilitator",
                             {"reason": "no_local_chain"})
    return found


async def fund(ctx: WorkContext, payload: ChainFund) -> ChainBalance:
    require(ctx.auth, "payments", "fund")
    chain = _local(ctx).chain
    tx_hash = await chain.run(chain.mint, payload.address, payload.amount)
    balance = await chain.run(chain.balance, payload.address)
    async with ctx.transaction() as tx:
        await tx.emit(EventType.TOKEN_MINTED, metadata={
            "protocol": X402, "network": chain.network, "asset": chain.asset, "address": payload.address,
            "amountAtomic": str(payload.amount), "currency": chain.token.symbol, "txHash": tx_hash})
    return ChainBalance(network=chain.network, asset=chain.asset, address=payload.address, balance=balance,
                        tx_hash=tx_hash)


async def balance(ctx: WorkContext, query: ChainBalanceQuery) -> ChainBalance:
    require(ctx.auth, "payments", "read")
    chain = _local(ctx).chain
    found = await chain.run(chain.balance, query.address)
    return ChainBalance(network=chain.network, asset=chain.asset, address=query.address, balance=found)
