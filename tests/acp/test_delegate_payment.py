"""ACP Delegate Payment and the test-mode PSP: vault tokens over real HTTP, each charged once, within its allowance.

The vault is filled through the gateway (`POST /acp/agentic_commerce/delegate_payment`, bodies checked
against the official JSON Schema); charges go through the PSP interface in the commerce replica's own
transaction (what checkout's `complete` calls), against real Postgres.
"""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
import sqlalchemy as sa
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from services.commerce.psp import provider
from shared.contracts.commerce.payments import VAULT_TOKEN_GET, Charge, PaymentDeclined
from shared.kernel.errors import NotFound
from shared.runtime.client import BusClient
from shared.runtime.service import ServiceRuntime
from tests.acp.conftest import Merchant, card, create_body, total
from tests.gateway.conftest import Caller, alice, bob, http  # noqa: F401 (fixtures)

SPEC = json.loads((Path(__file__).parents[2] / "shared/contracts/commerce/acp_spec/schema.delegate_payment.json")
                  .read_text())
_REGISTRY = Registry().with_resource(SPEC["$id"], Resource.from_contents(SPEC))
PATH = "/acp/agentic_commerce/delegate_payment"


def check(definition: str, instance: Any) -> None:
    """`instance` is valid against the official bundle's `definition`."""
    Draft202012Validator({"$ref": f"{SPEC['$id']}#/$defs/{definition}"}, registry=_REGISTRY).validate(instance)


def delegation(session: str, *, max_amount: int = 5000, currency: str = "usd", expires_in: float = 3600,
               **card: Any) -> dict[str, Any]:
    expires = (datetime.now(UTC) + timedelta(seconds=expires_in)).isoformat().replace("+00:00", "Z")
    body = {
        "payment_method": {"type": "card", "card_number_type": "fpan", "number": "4242424242424242",
                           "exp_month": "11", "exp_year": str(datetime.now(UTC).year + 2), "name": "Jane Doe",
                           "cvc": "223", "checks_performed": ["avs", "cvv"], "iin": "424242",
                           "display_card_funding_type": "credit", "display_brand": "visa", "display_last4": "4242",
                           "metadata": {}, **card},
        "allowance": {"reason": "one_time", "max_amount": max_amount, "currency": currency,
                      "checkout_session_id": session, "merchant_id": "acme", "expires_at": expires},
        "billing_address": {"name": "Jane Doe", "line_one": "185 Berry Street", "city": "San Francisco",
                            "state": "CA", "country": "US", "postal_code": "94107"},
        "risk_signals": [{"type": "card_testing", "score": 5, "action": "authorized"}],
        "metadata": {"campaign": "q4"},
    }
    check("DelegatePaymentRequest", body)
    return body


def headers(key: str | None = None) -> dict[str, str]:
    return {"API-Version": "2026-04-17", "Idempotency-Key": key or str(uuid4())}


async def delegate(caller: Caller, body: dict[str, Any]) -> str:
    response = await caller.http.post(PATH, json=body, headers=headers())
    assert response.status_code == 201, response.text
    check("DelegatePaymentResponse", response.json())
    return response.json()["id"]


async def charge(commerce: ServiceRuntime, org_id: UUID, token: str, amount: int, session: str, *,
                 currency: str = "usd", key: str | None = None) -> Charge:
    """What checkout's complete does: one charge through the configured PSP, in an org transaction of commerce's."""
    async with commerce.background(org_id).transaction() as tx:
        return await provider(commerce.settings).charge(tx, token=token, amount=amount, currency=currency,
                                                        checkout_session_id=session,
                                                        idempotency_key=key or str(uuid4()))


@pytest.fixture
def commerce(services: dict[str, ServiceRuntime]) -> ServiceRuntime:
    return services["commerce"]


async def test_a_delegated_token_is_charged_once_within_its_allowance(alice: Caller, bob: Caller,  # noqa: F811
                                                                        commerce: ServiceRuntime, bus: BusClient) -> None:
    token = await delegate(alice, delegation("cs_one", max_amount=5000))
    assert token.startswith("vt_")
    charged = await charge(commerce, alice.account.org_id, token, 4999, "cs_one")
    assert (charged.provider, charged.amount, charged.currency, charged.live) == ("test", 4999, "usd", False)
    kept = await bus.request(VAULT_TOKEN_GET, {"token": token}, alice.account.ctx)
    assert (kept.charge_id, kept.charged_amount, kept.max_amount, kept.display["display_last4"]) == (
        charged.id, 4999, 5000, "4242")
    with pytest.raises(NotFound):
        await bus.request(VAULT_TOKEN_GET, {"token": token}, bob.account.ctx)
    with pytest.raises(PaymentDeclined) as reused:
        await charge(commerce, alice.account.org_id, token, 10, "cs_one")
    assert reused.value.reason == "reused"


async def test_the_same_charge_retried_with_its_key_returns_the_first_charge(alice: Caller,  # noqa: F811
                                                                             commerce: ServiceRuntime) -> None:
    token = await delegate(alice, delegation("cs_retry"))
    first = await charge(commerce, alice.account.org_id, token, 1200, "cs_retry", key="complete-1")
    again = await charge(commerce, alice.account.org_id, token, 1200, "cs_retry", key="complete-1")
    assert again.id == first.id


@pytest.mark.parametrize(("amount", "session", "currency", "reason"), [
    (5001, "cs_x", "usd", "over_allowance"),
    (100, "cs_other", "usd", "wrong_session"),
    (100, "cs_x", "eur", "wrong_currency"),
])
async def test_a_charge_outside_the_allowance_is_declined(alice: Caller, commerce: ServiceRuntime,  # noqa: F811
                                                          amount: int, session: str, currency: str,
                                                          reason: str) -> None:
    token = await delegate(alice, delegation("cs_x", max_amount=5000))
    with pytest.raises(PaymentDeclined) as declined:
        await charge(commerce, alice.account.org_id, token, amount, session, currency=currency)
    assert declined.value.reason == reason
    assert (await charge(commerce, alice.account.org_id, token, 5000, "cs_x")).amount == 5000  # still unspent


async def test_an_expired_token_is_declined(alice: Caller, commerce: ServiceRuntime) -> None:  # noqa: F811
    token = await delegate(alice, delegation("cs_late", expires_in=-60))
    with pytest.raises(PaymentDeclined) as declined:
        await charge(commerce, alice.account.org_id, token, 100, "cs_late")
    assert declined.value.reason == "expired"


async def test_an_unknown_or_another_orgs_token_is_declined(alice: Caller, bob: Caller,  # noqa: F811
                                                            commerce: ServiceRuntime) -> None:
    token = await delegate(alice, delegation("cs_mine"))
    for org_id, token_id in ((alice.account.org_id, "vt_nope"), (bob.account.org_id, token)):
        with pytest.raises(PaymentDeclined) as declined:
            await charge(commerce, org_id, token_id, 100, "cs_mine")
        assert declined.value.reason == "unknown_token"


async def test_two_charges_racing_for_one_token_charge_it_once(alice: Caller, commerce: ServiceRuntime) -> None:  # noqa: F811
    token = await delegate(alice, delegation("cs_race"))
    results = await asyncio.gather(*(charge(commerce, alice.account.org_id, token, 100, "cs_race") for _ in range(5)),
                                   return_exceptions=True)
    charged = [r for r in results if isinstance(r, Charge)]
    refused = [r for r in results if isinstance(r, PaymentDeclined)]
    assert len(charged) == 1 and len(refused) == 4, results
    assert {r.reason for r in refused} == {"reused"}


@pytest.mark.parametrize(("change", "param"), [
    ({"number": "4242424242424241"}, "$.payment_method.number"),
    ({"exp_month": "13"}, "$.payment_method.exp_month"),
    ({"exp_year": "2001"}, "$.payment_method.exp_year"),
])
async def test_a_card_that_cannot_be_charged_is_refused(alice: Caller, change: dict[str, str], param: str) -> None:  # noqa: F811
    response = await alice.http.post(PATH, json=delegation("cs_bad", **change), headers=headers())
    assert response.status_code == 422, response.text
    check("Error", response.json())
    assert (response.json()["code"], response.json()["param"]) == ("invalid_card", param)


@pytest.mark.parametrize("mutate", [
    lambda body: body.pop("allowance"),
    lambda body: body["allowance"].update(currency="USD"),
    lambda body: body.update(surprise=True),
    lambda body: body["payment_method"].update(type="bank"),
])
async def test_a_body_outside_the_schema_is_400(alice: Caller, mutate: Any) -> None:  # noqa: F811
    body = delegation("cs_schema")
    mutate(body)
    response = await alice.http.post(PATH, json=body, headers=headers())
    assert response.status_code == 400, response.text
    check("Error", response.json())


async def test_the_card_number_is_not_kept(alice: Caller, commerce: ServiceRuntime) -> None:  # noqa: F811
    token = await delegate(alice, delegation("cs_secret"))
    async with commerce.db.transaction(alice.account.org_id) as session:
        row = (await session.execute(sa.text("SELECT row_to_json(t)::text FROM commerce.vault_tokens t WHERE id = :id"),
                                     {"id": token})).scalar_one()
    assert "4242424242424242" not in row and '"223"' not in row
    assert json.loads(row)["display"]["display_last4"] == "4242"


async def test_no_key_is_401_and_no_api_version_is_400(http: httpx.AsyncClient, alice: Caller) -> None:  # noqa: F811
    assert (await http.post(PATH, json=delegation("cs_anon"), headers=headers())).status_code == 401
    response = await alice.http.post(PATH, json=delegation("cs_v"), headers={"Idempotency-Key": str(uuid4())})
    assert response.status_code == 400
    check("Error", response.json())


@pytest.mark.parametrize("case", ["over_allowance", "expired", "wrong_session", "reused"])
async def test_complete_over_http_refuses_a_token_that_may_not_pay(merchant: Merchant, case: str) -> None:
    """The same refusals through checkout's complete: the session stays payable, with a `payment_declined` message."""
    ebook = await merchant.product("E-book", 1500, tax_category="digital")
    session = await merchant.create(create_body(ebook, buyer={"email": "reader@example.com"}))
    amount = total(session)
    if case == "reused":
        other = await merchant.create(create_body(ebook, buyer={"email": "reader@example.com"}))
        token = await delegate(merchant.caller, delegation(other["id"], max_amount=amount))
        assert (await merchant.complete(other["id"], {"payment_data": card(token)}))["status"] == "completed"
    else:
        token = await delegate(merchant.caller, delegation(
            "cs_elsewhere" if case == "wrong_session" else session["id"],
            max_amount=amount - 1 if case == "over_allowance" else amount,
            expires_in=-1 if case == "expired" else 3600))
    declined = await merchant.complete(session["id"], {"payment_data": card(token)})
    assert declined["status"] == "ready_for_payment" and "order" not in declined
    message = declined["messages"][-1]
    assert (message["code"], message["param"]) == ("payment_declined", "$.payment_data")
    assert message["content"].endswith(case)
