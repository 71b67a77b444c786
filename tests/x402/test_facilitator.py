"""x402's facilitator on the bus, settling on the local chain: payments signed by x402's official client.

A merchant org is paid through `x402.verify` / `x402.settle` as the gateway calls them (its payment
identity, tagged x402). Balances are read ON THE CHAIN; refusals carry x402's reason; a replay is
refused by the store at verify and settle, and two replicas racing on one payment settle it once.
"""

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from eth_account import Account

from shared.contracts.commerce.facilitator import X402_SETTLE, X402_VERIFY, PaymentRefused
from shared.contracts.eventlog import QUERY as EVENT_QUERY, REVENUE
from shared.contracts.graph import CONNECTION_QUERY, THING_CREATE, THING_GET, THING_QUERY
from shared.kernel.envelope import AuthContext, Protocol
from shared.kernel.errors import Forbidden
from shared.runtime.client import BusClient
from shared.runtime.context import service_identity
from tests.graph.conftest import owner  # noqa: F401 (fixture)
from tests.tenancy.conftest import Account as Member  # noqa: F401 (fixtures)
from tests.x402.conftest import LocalToken, Payer, chain_balance, signed_payment

log = logging.getLogger(__name__)
PRICE = 10_000  # 0.01 of the 6-decimal local dollar
URL = "https://merchant.test/x402/reports/latest"


def gateway_auth(org: Member) -> AuthContext:
    """What the gateway's resource server sends as: the seller's org, allowed to verify and settle."""
    return service_identity("gateway-x402", org.org_id, ("payments:verify", "payments:settle"))


async def verify(bus: BusClient, auth: AuthContext, payload: dict[str, Any], requirements: Any) -> dict[str, Any]:
    body = {"payment_payload": payload, "payment_requirements": _json(requirements), "resource": {"url": URL}}
    return (await bus.request(X402_VERIFY, body, auth, protocol=Protocol.X402)).response


async def settle(bus: BusClient, auth: AuthContext, payload: dict[str, Any], requirements: Any,
                 **more: Any) -> dict[str, Any]:
    body = {"payment_payload": payload, "payment_requirements": _json(requirements), "resource": {"url": URL}, **more}
    return (await bus.request(X402_SETTLE, body, auth, protocol=Protocol.X402)).response


async def a_sale(seller: Member, payer: Payer, token: LocalToken) -> tuple[str, AuthContext, Any, dict[str, Any]]:
    """A new payee of the seller's org, the gateway's identity, a price of PRICE, and `payer`'s signed payment."""
    pay_to = Account.create().address
    requirements = token.requirements(pay_to, PRICE)
    return pay_to, gateway_auth(seller), requirements, await signed_payment(payer, token, requirements, URL)


def _json(requirements: Any) -> dict[str, Any]:
    return requirements if isinstance(requirements, dict) else requirements.model_dump(by_alias=True, mode="json")


async def events_of(bus: BusClient, org: Member, status: str, count: int) -> list[Any]:
    deadline = time.monotonic() + 15
    while True:
        page = await bus.request(EVENT_QUERY, {"types": ["payment_event"], "limit": 100}, org.ctx)
        found = [e for e in page.events if e.metadata.get("status") == status]
        if len(found) >= count or time.monotonic() > deadline:
            assert len(found) == count, [e.metadata for e in page.events]
            return found
        await asyncio.sleep(0.1)


async def test_a_signed_payment_verifies_settles_and_moves_exactly_the_price_on_chain(
    bus: BusClient, owner: Member, payer: Payer, local_token: LocalToken  # noqa: F811
) -> None:
    pay_to, auth, requirements, payload = await a_sale(owner, payer, local_token)
    started = time.perf_counter()
    verified = await verify(bus, auth, payload, requirements)
    verified_in = time.perf_counter() - started
    assert verified == {"isValid": True, "payer": payer.address}, verified
    started = time.perf_counter()
    settled = await settle(bus, auth, payload, requirements)
    settled_in = time.perf_counter() - started
    log.warning("x402 over the bus on the local chain: verify %.0f ms, settle %.0f ms",
                verified_in * 1000, settled_in * 1000)
    assert settled["success"] is True and settled["network"] == local_token.network, settled
    assert settled["payer"] == payer.address and settled["transaction"].startswith("0x")
    assert await chain_balance(bus, payer.address) == payer.funded - PRICE
    assert await chain_balance(bus, pay_to) == PRICE

    [processed] = await events_of(bus, owner, "processed", 1)
    assert processed.protocol == "x402"
    assert {k: processed.metadata[k] for k in ("protocol", "txHash", "network", "amount", "currency", "asset",
                                               "resource", "payer", "amountAtomic")} == {
        "protocol": "x402", "txHash": settled["transaction"], "network": local_token.network, "amount": "0.01",
        "currency": "USDC", "asset": local_token.asset, "resource": URL, "payer": payer.address,
        "amountAtomic": str(PRICE)}
    [was_verified] = await events_of(bus, owner, "verified", 1)
    assert was_verified.metadata["amount"] == "0.01" and was_verified.metadata["protocol"] == "x402"

    payment = (await bus.request(THING_GET, {"id": str(processed.target_id)}, owner.ctx)).thing
    assert payment.type == "payment" and processed.target_type == "payment"
    assert {k: payment.properties[k] for k in ("protocol", "txHash", "status", "amount", "currency")} == {
        "protocol": "x402", "txHash": settled["transaction"], "status": "processed", "amount": 0.01, "currency": "USDC"}
    payers = (await bus.request(THING_QUERY, {"type": "external_agent", "where": [
        {"path": "metadata.address", "value": payer.address}]}, owner.ctx)).things
    assert len(payers) == 1 and payers[0].properties["agentId"] == f"{local_token.network}:{payer.address}"
    [paid] = (await bus.request(CONNECTION_QUERY, {"thing_id": str(payers[0].id), "direction": "out",
                                                   "types": ["transacted"]}, owner.ctx)).connections
    assert paid.metadata["protocol"] == "x402" and paid.metadata["txHash"] == settled["transaction"]
    sold = (await bus.request(THING_GET, {"id": str(paid.to_id)}, owner.ctx)).thing
    assert sold.type == "product" and sold.properties == {"protocol": "x402", "resource": URL}

    now = datetime.now(UTC)
    revenue = await bus.request(REVENUE, {"since": (now - timedelta(hours=1)).isoformat(),
                                          "until": (now + timedelta(minutes=1)).isoformat()}, owner.ctx)
    assert revenue.by_protocol == {"x402": Decimal("0.01")}, revenue


async def test_a_payer_seen_again_is_the_same_thing_and_a_named_product_is_what_was_sold(
    bus: BusClient, owner: Member, payer: Payer, local_token: LocalToken  # noqa: F811
) -> None:
    auth, pay_to = gateway_auth(owner), Account.create().address
    ebook = await bus.request(THING_CREATE, {"type": "digital_product", "name": "An ebook"}, owner.ctx)
    for sold in (None, ebook.id):
        requirements = local_token.requirements(pay_to, PRICE)
        assert (await settle(bus, auth, await signed_payment(payer, local_token, requirements, URL), requirements,
                             **({"product_id": str(sold)} if sold else {})))["success"]
    payers = (await bus.request(THING_QUERY, {"type": "external_agent"}, owner.ctx)).things
    assert len(payers) == 1
    paid = (await bus.request(CONNECTION_QUERY, {"thing_id": str(payers[0].id), "types": ["transacted"]},
                              owner.ctx)).connections
    assert len(paid) == 2 and ebook.id in {c.to_id for c in paid}
    assert await chain_balance(bus, pay_to) == 2 * PRICE


async def test_a_replayed_payment_is_refused_at_verify_and_settle(
    bus: BusClient, owner: Member, payer: Payer, local_token: LocalToken  # noqa: F811
) -> None:
    pay_to, auth, requirements, payload = await a_sale(owner, payer, local_token)
    assert (await settle(bus, auth, payload, requirements))["success"]

    again = await verify(bus, auth, payload, requirements)
    assert again["isValid"] is False and again["invalidReason"] == "replayed_payment", again
    resettled = await settle(bus, auth, payload, requirements)
    assert resettled["success"] is False and resettled["errorReason"] == "replayed_payment", resettled
    assert resettled["transaction"] == ""  # refused by the store: nothing was sent to the chain
    assert await chain_balance(bus, pay_to) == PRICE
    await events_of(bus, owner, "processed", 1)


async def test_two_settles_racing_on_one_payment_settle_it_once(
    bus: BusClient, owner: Member, payer: Payer, local_token: LocalToken  # noqa: F811
) -> None:
    pay_to, auth, requirements, payload = await a_sale(owner, payer, local_token)
    answers = await asyncio.gather(*(settle(bus, auth, payload, requirements) for _ in range(4)))
    assert sorted(a["success"] for a in answers) == [False, False, False, True], answers
    assert {a.get("errorReason") for a in answers if not a["success"]} == {"replayed_payment"}
    assert await chain_balance(bus, pay_to) == PRICE
    assert await chain_balance(bus, payer.address) == payer.funded - PRICE


def _tampered(payload: dict[str, Any], **authorization: str) -> dict[str, Any]:
    inner = payload["payload"]
    return {**payload, "payload": {**inner, "authorization": {**inner["authorization"], **authorization}}}


async def test_tampered_and_wrong_payments_are_refused_with_the_reason(
    bus: BusClient, owner: Member, payer: Payer, local_token: LocalToken  # noqa: F811
) -> None:
    pay_to, thief, auth = Account.create().address, Account.create().address, gateway_auth(owner)
    requirements = local_token.requirements(pay_to, PRICE)
    payload = await signed_payment(payer, local_token, requirements, URL)
    signature = payload["payload"]["signature"]
    forged = signature[:-4] + ("00" if signature[-4:-2] != "00" else "11") + signature[-2:]
    short = local_token.requirements(pay_to, PRICE // 2)
    underpaid = await signed_payment(payer, local_token, short, URL)  # signed for half the price
    expiring = local_token.requirements(pay_to, PRICE, max_timeout_seconds=2)
    expired = await signed_payment(payer, local_token, expiring, URL)  # validBefore within x402's 6 s margin
    elsewhere = local_token.requirements(pay_to, PRICE).model_copy(update={"network": "eip155:84532"})
    mainnet = local_token.requirements(pay_to, PRICE).model_copy(update={"network": "eip155:1"})
    on_mainnet = {**payload, "accepted": _json(mainnet)}
    cases = {
        "tampered amount": (_tampered(payload, value=str(PRICE * 10)),
                            _json(requirements) | {"amount": str(PRICE * 10)}, "invalid_exact_evm_payload_signature"),
        "tampered recipient": (_tampered(payload, to=thief), _json(requirements) | {"payTo": thief},
                               "invalid_exact_evm_payload_signature"),
        "recipient not the seller": (_tampered(payload, to=thief), requirements,
                                     "invalid_exact_evm_payload_recipient_mismatch"),
        "tampered signature": ({**payload, "payload": {**payload["payload"], "signature": forged}}, requirements,
                               "invalid_exact_evm_payload_signature"),
        "underpayment": (underpaid, requirements, "invalid_exact_evm_payload_authorization_value_mismatch"),
        "expired validBefore": (expired, expiring, "invalid_exact_evm_payload_authorization_valid_before"),
        "paid on another network": ({**payload, "accepted": _json(elsewhere)}, requirements, "network_mismatch"),
        "a price on a network not settled here": (payload, elsewhere, "unsupported_network"),
        "both on a network not settled here": (on_mainnet, mainnet, "unsupported_network"),
    }
    for case, (sent, wanted, reason) in cases.items():
        verified = await verify(bus, auth, sent, wanted)
        assert verified["isValid"] is False and verified["invalidReason"] == reason, (case, verified)
        settled = await settle(bus, auth, sent, wanted)
        assert settled["success"] is False and settled["errorReason"] == reason, (case, settled)
    assert await chain_balance(bus, pay_to) == 0
    assert await chain_balance(bus, payer.address) == payer.funded
    # refused before the chain: the claims were released, so the genuine payment still settles
    assert (await settle(bus, auth, payload, requirements))["success"] is True
    assert await chain_balance(bus, pay_to) == PRICE


async def test_a_payer_without_the_funds_is_refused(
    bus: BusClient, owner: Member, payer: Payer, local_token: LocalToken  # noqa: F811
) -> None:
    requirements = local_token.requirements(Account.create().address, payer.funded + 1)
    verified = await verify(bus, gateway_auth(owner), await signed_payment(payer, local_token, requirements),
                            requirements)
    assert verified["isValid"] is False and verified["invalidReason"] == "invalid_exact_evm_insufficient_balance"


async def test_v1_payloads_and_requirements_are_accepted(
    bus: BusClient, owner: Member, payer: Payer, local_token: LocalToken  # noqa: F811
) -> None:
    pay_to, auth, requirements, v2 = await a_sale(owner, payer, local_token)
    v1_payload = {"x402Version": 1, "scheme": "exact", "network": "one-local", "payload": v2["payload"]}
    v1_requirements = {"scheme": "exact", "network": "one-local", "maxAmountRequired": str(PRICE), "resource": URL,
                       "description": "a report", "mimeType": "application/json", "payTo": pay_to,
                       "maxTimeoutSeconds": 300, "asset": local_token.asset,
                       "extra": {"name": local_token.name, "version": local_token.version}}
    assert (await verify(bus, auth, v1_payload, v1_requirements))["isValid"] is True
    assert (await verify(bus, auth, v1_payload, requirements))["isValid"] is True  # v1 payload, v2 requirements
    settled = await settle(bus, auth, v1_payload, v1_requirements)
    assert settled["success"] is True and settled["network"] == local_token.network, settled
    assert await chain_balance(bus, pay_to) == PRICE


async def test_malformed_payloads_and_callers_without_the_permission_are_refused(
    bus: BusClient, owner: Member, payer: Payer, local_token: LocalToken  # noqa: F811
) -> None:
    requirements = local_token.requirements(Account.create().address, PRICE)
    payload = await signed_payment(payer, local_token, requirements)
    for broken in ({"x402Version": 2}, {**payload, "payload": {"signature": "0x00"}}, _tampered(payload, value="ten"),
                   _tampered(payload, nonce="0x12"), _tampered(payload, to="nobody")):
        with pytest.raises(PaymentRefused) as refused:
            await verify(bus, gateway_auth(owner), broken, requirements)
        assert refused.value.details["reason"] == "invalid_payload"
    reader = service_identity("gateway-x402", owner.org_id, ("payments:verify",))
    with pytest.raises(Forbidden):
        await settle(bus, reader, payload, requirements)
    assert await chain_balance(bus, payer.address) == payer.funded
