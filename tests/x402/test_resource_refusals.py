"""What the x402 resource server refuses, each with 402 and the reason: replays (also at a second gateway
replica), tampered payments, underpayment, an expired authorization, the wrong network. The payloads are
made by the official x402 client and then changed, as an attacker would; the chain says nothing moved.
Also: the v1 `X-PAYMENT` header is accepted and answered with `X-PAYMENT-RESPONSE`.
"""

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from eth_account import Account as EthAccount
from x402 import x402Client
from x402.http.utils import (
    decode_payment_required_header,
    decode_payment_response_header,
    encode_payment_signature_header,
    safe_base64_encode,
)
from x402.mechanisms.evm.exact import register_exact_evm_client
from x402.mechanisms.evm.signers import EthAccountSigner
from x402.schemas import PaymentPayload, PaymentRequired

from shared.contracts.commerce.x402 import Price
from shared.runtime.client import BusClient
from tests.gateway.conftest import assert_problem  # noqa: F401 (fixture)
from tests.tenancy.conftest import Account  # noqa: F401 (fixtures)
from tests.x402.test_resource_paid import (  # noqa: F401 (fixtures)
    FUNDS,
    PRICE,
    balance,
    http,
    payer,
    price,
    product,
    second_gateway,
    seller,
    url,
)


async def required(http: httpx.AsyncClient, price: Price) -> PaymentRequired:
    response = await http.get(url(price))
    assert response.status_code == 402
    return decode_payment_required_header(response.headers["PAYMENT-REQUIRED"])  # type: ignore[return-value]


async def signed(wallet: Any, needed: PaymentRequired, **changes: Any) -> PaymentPayload:
    """A payment the official client signs for the 402's requirement (changed first, if asked), claiming the
    requirement the server really advertised (as a client that lies about what it signed would)."""
    client = register_exact_evm_client(x402Client(), EthAccountSigner(wallet)).set_spend_controls(False)
    real = needed.accepts[0]
    asked = needed.model_copy(update={"accepts": [real.model_copy(update=changes)]}) if changes else needed
    payload = await client.create_payment_payload(asked)
    return payload.model_copy(update={"accepted": real})


def header(payload: PaymentPayload) -> dict[str, str]:
    return {"PAYMENT-SIGNATURE": encode_payment_signature_header(payload)}


def reason_of(response: httpx.Response) -> str:
    body = assert_problem(response, 402, "payment_required")
    assert body["details"]["reason"] == body["detail"]
    return body["detail"]


async def test_a_replayed_payment_is_refused_here_and_at_another_replica(
        bus: BusClient, http: httpx.AsyncClient, second_gateway: str, seller: Account, price: Price,
        payer: Any) -> None:
    payment = header(await signed(payer, await required(http, price)))
    first = await http.get(url(price), headers=payment)
    assert first.status_code == 200, first.text
    assert "replay" in reason_of(await http.get(url(price), headers=payment))
    async with httpx.AsyncClient(base_url=second_gateway, timeout=30) as other:
        assert "replay" in reason_of(await other.get(url(price), headers=payment))
    assert await balance(bus, seller, payer.address) == FUNDS - PRICE


def _authorization(change: Callable[[dict[str, Any]], None]) -> Callable[[PaymentPayload], PaymentPayload]:
    def tamper(payload: PaymentPayload) -> PaymentPayload:
        inner = json.loads(json.dumps(payload.payload))
        change(inner)
        return payload.model_copy(update={"payload": inner})

    return tamper


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda inner: inner["authorization"].__setitem__(key, value)


def _flip_signature(inner: dict[str, Any]) -> None:
    signature = inner["signature"]
    inner["signature"] = signature[:-4] + ("0000" if signature[-4:] != "0000" else "1111")


ATTACKER = EthAccount.create().address
TAMPERED = {
    "amount raised": _authorization(_set("value", str(PRICE * 100))),
    "recipient": _authorization(_set("to", ATTACKER)),
    "nonce": _authorization(_set("nonce", "0x" + "11" * 32)),
    "signature": _authorization(_flip_signature),
}


@pytest.mark.parametrize("case", sorted(TAMPERED))
async def test_a_tampered_payment_is_refused(bus: BusClient, http: httpx.AsyncClient, seller: Account, price: Price,
                                             payer: Any, case: str) -> None:
    payment = TAMPERED[case](await signed(payer, await required(http, price)))
    reason = reason_of(await http.get(url(price), headers=header(payment)))
    assert reason and reason != "payment required"
    assert await balance(bus, seller, payer.address) == FUNDS
    assert await balance(bus, seller, price.pay_to) == 0


SIGNED_WRONG = {
    "underpayment": {"amount": str(PRICE - 1)},
    "expired validBefore": {"max_timeout_seconds": -60},
    "wrong network": {"network": "eip155:84532"},
    "recipient in the signature": {"pay_to": ATTACKER},
}


@pytest.mark.parametrize("case", sorted(SIGNED_WRONG))
async def test_a_payment_signed_for_something_else_is_refused(bus: BusClient, http: httpx.AsyncClient,
                                                              seller: Account, price: Price, payer: Any,
                                                              case: str) -> None:
    payment = await signed(payer, await required(http, price), **SIGNED_WRONG[case])
    reason = reason_of(await http.get(url(price), headers=header(payment)))
    assert reason and reason != "payment required"
    assert await balance(bus, seller, payer.address) == FUNDS


async def test_claiming_other_requirements_is_refused(http: httpx.AsyncClient, price: Price, payer: Any) -> None:
    """A payload whose `accepted` is not what the server asks (a cheaper price) matches nothing."""
    needed = await required(http, price)
    payment = await signed(payer, needed)
    cheaper = payment.model_copy(update={"accepted": payment.accepted.model_copy(update={"amount": "1"})})
    assert reason_of(await http.get(url(price), headers=header(cheaper)))


async def test_garbage_in_the_header_is_a_402_not_a_crash(http: httpx.AsyncClient, price: Price) -> None:
    v1_elsewhere = {"x402Version": 1, "scheme": "exact", "network": "base-sepolia", "payload": {"signature": "0x00"}}
    for value in ("not base64 at all", safe_base64_encode("{}"), safe_base64_encode('{"x402Version": 2}'),
                  safe_base64_encode(json.dumps(v1_elsewhere)), safe_base64_encode('{"x402Version": 1}')):
        reason_of(await http.get(url(price), headers={"PAYMENT-SIGNATURE": value}))


async def test_v1_headers_are_accepted(bus: BusClient, http: httpx.AsyncClient, seller: Account, price: Price,
                                       payer: Any) -> None:
    """`X-PAYMENT` with a v2 payload, and with a v1 one (scheme and network at the top); `X-PAYMENT-RESPONSE` back."""
    v2 = await signed(payer, await required(http, price))
    response = await http.get(url(price), headers={"X-PAYMENT": encode_payment_signature_header(v2)})
    assert response.status_code == 200, response.text
    assert decode_payment_response_header(response.headers["X-PAYMENT-RESPONSE"]).success

    v1 = await signed(payer, await required(http, price))
    legacy = {"x402Version": 1, "scheme": "exact", "network": price.network, "payload": v1.payload}
    response = await http.get(url(price), headers={"X-PAYMENT": safe_base64_encode(json.dumps(legacy))})
    assert response.status_code == 200, response.text
    assert decode_payment_response_header(response.headers["X-PAYMENT-RESPONSE"]).success
    assert await balance(bus, seller, payer.address) == FUNDS - 2 * PRICE
