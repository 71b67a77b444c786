"""AP2's pure parts without a stack: the schemas' fast path says what the full validation says, our ES256 check of an
SD-JWT accepts what sd-jwt's own verifier accepts and nothing else, a signed JWT verifies, delegation only narrows,
checkout constraints match line items like the official SDK, V1 messages are read and mapped, what remains of a
mandate is what closing it allows, and only a merchant's definite refusal releases a use."""

import base64
import copy
import time
from typing import Any

import pytest

from services.agents.tools_ap2 import refused_for_good
from sd_jwt.verifier import SDJWTVerifier

from services.commerce.ap2 import credentials, schemas, v1
from services.commerce.ap2.constraints import DAY, Usage, check
from services.commerce.ap2.narrowing import check_checkout, narrows
from services.commerce.ap2.remaining import remaining
from shared.contracts.commerce.ap2 import MandateRefused
from shared.kernel.errors import OneError
from tests.ap2.chains import Purchase, close, key, open_mandate, open_payment
from tests.ap2.test_checkout_mandates import INTENT, PAYMENT, cart

RANGE = {"type": "payment.amount_range", "currency": "USD", "min": 100, "max": 5000}
BUDGET = {"type": "payment.budget", "currency": "USD", "max": 9000}
EVERY = {"type": "payment.agent_recurrence", "frequency": "WEEKLY", "max_occurrences": 4}
PAYEES = {"type": "payment.allowed_payees", "allowed": [{"id": "a", "name": "A"}, {"id": "b", "name": "B"}]}


def variants(base: dict[str, Any]) -> list[dict[str, Any]]:
    def changed(change: Any) -> dict[str, Any]:
        copied = copy.deepcopy(base)
        change(copied)
        return copied

    return [base, changed(lambda m: m["constraints"].append({"type": "payment.budget"})),
            changed(lambda m: m["constraints"].append({"type": "unknown"})), changed(lambda m: m.pop("cnf")),
            changed(lambda m: m["constraints"].append("text")), changed(lambda m: m.update(constraints=[RANGE])),
            changed(lambda m: m["constraints"][0].update(max="5000")), changed(lambda m: m.update(payee={"id": "x"})),
            changed(lambda m: m["constraints"].append({**RANGE, "min": "1"})), changed(lambda m: m.update(iat="now"))]


def _flipped(segment: str, index: int) -> str:
    """The base64url segment with one bit of its `index`-th byte flipped."""
    raw = bytearray(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    raw[index] ^= 1
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def test_an_sd_jwt_verifies_as_sd_jwt_says_and_nothing_else_does() -> None:
    issuer, agent, stranger = key("cp"), key("agent"), key("stranger")
    chain = close(open_mandate(issuer, agent, [RANGE]), agent, Purchase("m", "hash", "nonce", 1000))
    root, hop = credentials.parse_chain(chain)
    expected = SDJWTVerifier(root.sd_jwt, lambda _iss, _header: issuer).get_verified_payload()
    assert credentials.verified_claims(root, credentials.key_of(issuer.export_public(as_dict=True))) == expected
    holder = credentials.key_of(credentials.mandate_in(expected)["cnf"]["jwk"])
    assert credentials.verified_claims(hop, holder)["sd_hash"] == credentials.digest(root.sd_jwt)
    header, payload, signature = root.jwt.split(".")
    other = credentials.parse_chain(close(open_mandate(issuer, agent, [BUDGET]), agent, Purchase("m", "h", "n", 1)))[0]
    broken = [root.jwt.rpartition(".")[0] + "." + _flipped(signature, 5),  # r altered
              root.jwt.rpartition(".")[0] + "." + _flipped(signature, 40),  # s altered
              f"{header}.{_flipped(payload, 3)}.{signature}",  # the claims altered
              f"{header}.{other.jwt.split('.')[1]}.{signature}",  # another token's claims
              f"{header}.{payload}.{signature[:-4]}"]  # not 64 bytes
    for jwt in broken:
        token = credentials.Token(jwt, root.disclosures, root.header, root.claims)
        with pytest.raises(ValueError):
            credentials.verified_claims(token, credentials.key_of(issuer.export_public(as_dict=True)))
    with pytest.raises(ValueError):  # another key
        credentials.verified_claims(root, credentials.key_of(stranger.export_public(as_dict=True)))
    swapped = credentials.Token(root.jwt, other.disclosures, root.header, root.claims)  # a disclosure not signed
    assert credentials.verified_claims(swapped, credentials.key_of(issuer.export_public(as_dict=True))) == \
        SDJWTVerifier(swapped.sd_jwt, lambda _iss, _header: issuer).get_verified_payload() == \
        {"iss": "https://cp.test", "delegate_payload": []}  # it resolves nothing (credentials.mandate_in refuses)


def test_a_signed_jwt_verifies_with_the_public_key_only() -> None:
    signer = credentials.new_key("merchant-1")
    token = credentials.sign_jwt(signer, {"status": "Success", "n": 1}, credentials.RECEIPT_TYP)
    assert credentials.verify_jwt(token, {"keys": [credentials.public_jwk(signer)]}) == {"status": "Success", "n": 1}
    assert credentials.unverified_claims(token) == {"status": "Success", "n": 1}
    header, payload, signature = token.split(".")
    with pytest.raises(ValueError):
        credentials.verify_jwt(f"{header}.{payload}.{_flipped(signature, 7)}",
                               {"keys": [credentials.public_jwk(signer)]})
    with pytest.raises(ValueError):
        credentials.verify_jwt(token, {"keys": [credentials.public_jwk(credentials.new_key("merchant-1"))]})


def test_the_open_mandate_fast_path_agrees_with_the_full_schema() -> None:
    for mandate in variants(open_payment(key("a"), [RANGE, BUDGET, EVERY, PAYEES])):
        assert schemas.valid(schemas.OPEN_PAYMENT, mandate) == (not schemas.errors(schemas.OPEN_PAYMENT, mandate))
    line_items = {"type": "checkout.line_items", "items": [{"id": "r", "acceptable_items": [{"id": "x", "title": "X"}],
                                                            "quantity": 1}]}
    base = {"vct": "mandate.checkout.open.1", "cnf": {}, "constraints": [line_items]}
    for mandate in (base, {**base, "constraints": []}, {**base, "constraints": [{**line_items, "items": []}]},
                    {**base, "constraints": [line_items, {"type": "checkout.allowed_merchants", "allowed": [{}]}]}):
        assert schemas.valid(schemas.OPEN_CHECKOUT, mandate) == (not schemas.errors(schemas.OPEN_CHECKOUT, mandate))
    assert schemas.valid(schemas.OPEN_PAYMENT, variants(open_payment(key("a"), [RANGE]))[0])


def refused(call: Any, *args: Any) -> dict[str, Any]:
    with pytest.raises(MandateRefused) as raised:
        call(*args)
    return raised.value.details


def test_a_delegation_may_only_narrow() -> None:
    agent, sub = key("a"), key("s")
    parent = open_payment(agent, [RANGE, BUDGET, EVERY, PAYEES], exp=int(time.time()) + 600)
    narrower = [{**RANGE, "min": 200, "max": 4000}, {**BUDGET, "max": 100}, {**EVERY, "max_occurrences": 2,
                "frequency": "MONTHLY"}, {**PAYEES, "allowed": PAYEES["allowed"][:1]}]
    narrows(parent, open_payment(sub, narrower, exp=parent["exp"]), 1)
    widenings = {"payment.amount_range": {**RANGE, "max": 5001}, "payment.budget": {**BUDGET, "currency": "EUR"},
                 "payment.agent_recurrence": {**EVERY, "frequency": "DAILY"},
                 "payment.allowed_payees": {**PAYEES, "allowed": [*PAYEES["allowed"], {"id": "c", "name": "C"}]}}
    for name, wider in widenings.items():
        rules = [wider if rule["type"] == name else rule for rule in narrower]
        assert refused(narrows, parent, open_payment(sub, rules, exp=parent["exp"]), 3) == {
            "reason": "widened", "hop": 3, "constraint": name}
        dropped = [rule for rule in narrower if rule["type"] != name]
        assert refused(narrows, parent, open_payment(sub, dropped, exp=parent["exp"]), 1)["constraint"] == name
    assert refused(narrows, parent, open_payment(sub, narrower, exp=parent["exp"] + 1), 1)["constraint"] == "exp"
    fixed = {**parent, "payment_amount": {"amount": 100, "currency": "USD"}}
    assert refused(narrows, fixed, open_payment(sub, narrower, exp=parent["exp"]), 2)["constraint"] == "payment_amount"


def test_checkout_constraints_match_items_to_requirements() -> None:
    def mandate(*requirements: tuple[list[str], int]) -> dict[str, Any]:
        return {"constraints": [{"type": "checkout.line_items", "items": [
            {"id": f"r{i}", "acceptable_items": [{"id": sku, "title": sku} for sku in skus], "quantity": quantity}
            for i, (skus, quantity) in enumerate(requirements)]}]}

    def checkout(*skus: str, merchant: str = "m") -> dict[str, Any]:
        return {"merchant": {"id": merchant, "name": "M"}, "line_items": [{"id": sku, "title": sku} for sku in skus]}

    check_checkout(mandate((["a", "b"], 1), (["a"], 1)), checkout("b", "a"))  # b must take r0 so a fits r1
    check_checkout(mandate((["a"], 2)), {"line_items": [{"item": {"id": "a"}, "quantity": 2}]})  # official shape
    for requirements, items in (([(["a"], 1)], ("a", "a")), ([(["a"], 1)], ("c",)), ([(["a"], 1)], ()),
                                ([(["a", "b"], 1), (["a"], 1)], ("b", "b"))):
        assert refused(check_checkout, mandate(*requirements), checkout(*items))["reason"] == "line_items"
    merchants = {"constraints": [{"type": "checkout.allowed_merchants", "allowed": [{"id": "m", "name": "M"}]}]}
    check_checkout(merchants, checkout("a"))
    assert refused(check_checkout, merchants, checkout("a", merchant="n"))["reason"] == "allowed_merchants"


def test_v1_messages_are_read_and_mapped() -> None:
    now = time.time()
    kind, message = v1.unwrap({"ap2.mandates.CartMandate": cart()}, None)
    parsed, mapped = v1.read(kind, message, now)
    assert (kind, mapped["mandateType"], mapped["total"], mapped["currency"]) == ("CartMandate", "cart", 120.0, "USD")
    assert not v1.signature_present(parsed) and not v1.merchant_signed(parsed, {"keys": []}, "m")
    parsed, mapped = v1.read("PaymentMandate", PAYMENT, now)
    assert v1.signature_present(parsed) and "user_authorization" not in v1.stored_claims(parsed)
    assert (mapped["mandateType"], mapped["cartId"]) == ("cart", "order-1")
    assert v1.read("IntentMandate", INTENT, now)[1]["intent"]["merchants"] == ["Shoe Shop"]
    assert v1.credential_hash({"b": 1, "a": 2}) == v1.credential_hash({"a": 2, "b": 1})
    assert refused(v1.unwrap, {"ap2.mandates.Other": {}}, None)["reason"] == "malformed"
    assert refused(v1.read, "IntentMandate", {**INTENT, "intent_expiry": "soon"}, now)["reason"] == "invalid_mandate"
    assert refused(v1.read, "CartMandate", {"contents": []}, now)["reason"] == "invalid_mandate"


def test_what_remains_of_a_mandate_is_what_close_will_allow() -> None:
    now = time.time()
    mandate = open_payment(key("agent"), [RANGE, BUDGET, EVERY])
    fresh = remaining(mandate, Usage(), now)
    assert (fresh["usable"], fresh["uses_left"], fresh["max_amount_now"]) == (True, 4, {"USD": 5000})
    spent = remaining(mandate, Usage(3, {"USD": 6000}, now - 8 * DAY), now)
    assert (spent["budget"], spent["uses_left"], spent["max_amount_now"]) == (
        {"currency": "USD", "max": 9000, "spent": 6000, "left": 3000}, 1, {"USD": 3000})
    closed = {"payee": {"id": "a", "name": "A"}, "payment_amount": {"amount": 3000, "currency": "USD"},
              "payment_instrument": {"id": "card", "type": "card"}}
    check(mandate, closed, Usage(3, {"USD": 6000}, now - 8 * DAY), now)  # what it says fits, close allows
    with pytest.raises(MandateRefused):  # one unit more does not
        check(mandate, {**closed, "payment_amount": {"amount": 3001, "currency": "USD"}},
              Usage(3, {"USD": 6000}, now - 8 * DAY), now)
    soon = remaining(mandate, Usage(1, {"USD": 100}, now - DAY), now)  # weekly: not before a week has passed
    assert (soon["usable"], soon["why_not"]) == (False, "recurrence") and soon["next_use_at"]
    once = open_payment(key("agent"), [RANGE])
    assert remaining(once, Usage(1, {"USD": 100}, now), now)["why_not"] == "recurrence"  # no recurrence: once
    assert remaining(open_payment(key("agent"), [BUDGET, EVERY]), Usage(1, {"USD": 9000}, now - 8 * DAY),
                     now)["why_not"] == "budget"


@pytest.mark.parametrize(("details", "final"), [
    ({"state": "failed", "remote_code": "mandate_refused", "reason": "nonce"}, True),
    ({"state": "failed", "remote_code": "payment_declined", "reason": "card_declined"}, True),
    ({"state": "rejected", "remote_code": "mandate_refused", "reason": "budget"}, True),
    ({"state": "failed", "remote_code": "mandate_refused", "reason": "nonce_reused"}, False),  # paid: maybe by it
    ({"state": "failed", "remote_code": "mandate_refused", "reason": "checked_out"}, False),
    ({"state": "failed", "remote_code": "unavailable"}, False),  # the merchant's own trouble: outcome unknown
    ({"state": "working", "remote_code": "mandate_refused", "reason": "nonce"}, False),  # not its last word
    ({}, False),  # a timeout or a transport error: no answer at all
])
def test_only_a_definite_refusal_releases_a_use(details: dict[str, Any], final: bool) -> None:
    assert refused_for_good(OneError("refused", details)) is final
