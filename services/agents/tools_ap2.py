"""The `ap2_purchase` tool: an agent buys from a merchant agent over A2A, paying with the AP2 mandate granted to it.

The merchant is an external A2A agent of the org whose card declares the AP2 extension, with the keys it
signs with (`params.jwks_uri`). The purchase, each step through the official a2a-sdk client:
1. ask the merchant for a checkout (`ap2.CheckoutRequest` → `ap2.checkout`), and verify the checkout JWT
   with the merchant's published keys (signature, expiry, its hash, the merchant and total it names);
2. ask commerce for the closed mandate of exactly this purchase (`ap2.mandate.close`, as the agents service
   acting for the agent: the agent's key never leaves commerce). Commerce compares the price with the open
   mandate's constraints (a `price_event`, `action: checked`, `withinBudget`) and refuses what they forbid
   before anything is signed — counting every purchase under the mandate row's lock, so concurrent
   purchases never exceed the budget. A refusal is the tool's error (`mandate_refused`, its `reason`);
3. present the chain (`ap2.mandates.PaymentMandateSdJwt` + `checkout_id`) and verify the receipt the
   merchant returns: its signature with the same keys, `status: Success`, its `reference` = this chain.
   With a `checkout_mandate_id` (an open checkout mandate granted to the agent, which the payment mandate's
   `payment.reference` names), the checkout mandate is closed for the same checkout first (commerce refuses
   items or a merchant it does not allow) and presented in the same message before the payment mandate
   (`ap2.mandates.CheckoutMandateSdJwt`); its checkout receipt (`ap2.CheckoutReceipt`) is verified the same way.
   If the merchant definitely refused it (its task failed with `mandate_refused` or `payment_declined`),
   the closed mandate's use is released (`ap2.mandate.release`): it no longer counts against the budget or
   the recurrence. An outcome the tool cannot know (a timeout, a lost answer, a checkout already paid —
   perhaps by this very chain) releases nothing: that use stays counted (docs/ap2_agents.md).
The merchant's commerce stores the receipt; here the purchase is a `payment_event` (`protocol: ap2`,
`direction: outgoing`: spending, not revenue) and a `transacted` connection from the agent to the merchant
agent's thing, both citing the receipt, and the tool's result carries it (claims and signed JWT).
"""

import hashlib
import json
import logging
import time
from base64 import urlsafe_b64encode
from typing import Any
from uuid import uuid4

import httpx
from a2a.client import AuthInterceptor, ClientConfig, ClientFactory
from a2a.extensions.common import HTTP_EXTENSION_HEADER
from a2a.helpers import get_data_parts, new_data_part
from a2a.types.a2a_pb2 import Message, Role, SendMessageRequest, Task, TaskState
from jwcrypto.common import JWException
from jwcrypto.jwk import JWKSet
from jwcrypto.jwt import JWT

from services.agents import a2a_client, tools_external
from services.agents.a2a_client import _StoredCredential, _typed  # the delegation client's, the same for AP2
from services.agents.keys import external_credential
from services.agents.models_external import ExternalAgentRow
from services.agents.run_work import RunWork
from services.agents.tools_builtin import Ap2PurchaseArgs
from shared.contracts.agents import ExternalAgentNotFound, ExternalTaskFailed
from shared.contracts.agents.ap2 import (
    AP2_EXTENSION_URI,
    CHECKOUT_ID_KEY,
    CHECKOUT_KEY,
    CHECKOUT_MANDATE_KEY,
    CHECKOUT_REQUEST_KEY,
    ERROR_KEY,
    PAYMENT_MANDATE_KEY,
)
from shared.contracts.commerce.ap2 import AP2_CLOSE, AP2_RELEASE, MandateRefused
from shared.contracts.commerce.payments import PaymentDeclined
from shared.contracts.commerce.products import exponent
from shared.contracts.graph import CONNECTION_CREATE
from shared.kernel.envelope import Protocol
from shared.kernel.errors import Forbidden, OneError
from shared.kernel.ontology import EventType
from shared.runtime.context import service_identity

log = logging.getLogger(__name__)
JWKS_TIMEOUT = 10.0
FINAL_REFUSALS = frozenset({MandateRefused.code, PaymentDeclined.code})
"""The merchant's error codes that mean it will never accept the presented chain (on this platform: a refusal is
recorded and final)."""
UNKNOWN_OUTCOME_REASONS = frozenset({"nonce_reused", "checked_out"})
"""Refusals that say the checkout is paid (or checked out) already: perhaps by this very chain."""
ENDED_REFUSED = frozenset({"failed", "rejected"})
"""The A2A task states in which a refusal is the merchant's last word (not a task still working)."""


class MerchantUntrusted(Forbidden):
    """What the merchant sent does not verify with its published keys (or says another merchant, total, receipt)."""

    code = "ap2_merchant_untrusted"


def _digest(text: str) -> str:
    return urlsafe_b64encode(hashlib.sha256(text.encode("ascii")).digest()).rstrip(b"=").decode("ascii")


def jwks_uri(card: dict[str, Any]) -> str:
    """Where the merchant's card says its keys are (the AP2 extension's `params.jwks_uri`)."""
    for extension in (card.get("capabilities") or {}).get("extensions") or []:
        if extension.get("uri") == AP2_EXTENSION_URI:
            uri = (extension.get("params") or {}).get("jwks_uri")
            if isinstance(uri, str) and uri.startswith(("http://", "https://")):
                return uri
    raise MerchantUntrusted("the merchant agent's card declares no AP2 extension with its keys (jwks_uri)")


async def _keys(uri: str) -> JWKSet:
    try:
        async with httpx.AsyncClient(timeout=JWKS_TIMEOUT) as http:
            response = await http.get(uri)
            response.raise_for_status()
        keys = JWKSet.from_json(response.text)
    except (httpx.HTTPError, ValueError, JWException) as error:
        raise MerchantUntrusted(f"the merchant's keys could not be read from {uri}: {type(error).__name__}") from None
    if not keys["keys"]:
        raise MerchantUntrusted("the merchant publishes no keys")
    return keys


def verified(token: Any, keys: JWKSet, what: str) -> dict[str, Any]:
    """The claims of an ES256 JWT signed by one of the merchant's keys (by `kid`), unexpired; else refused."""
    try:
        return json.loads(JWT(jwt=str(token), key=keys, algs=["ES256"], expected_type="JWS").claims)
    except (JWException, ValueError, TypeError) as error:
        raise MerchantUntrusted(f"the merchant's {what} does not verify with its published keys: "
                                f"{type(error).__name__}") from None


async def _ask(target: ExternalAgentRow, credential: str | None, data: dict[str, Any]) -> dict[str, Any]:
    """Send one AP2 message (each key a data part) to the merchant agent; the data of its ended task."""
    card = a2a_client.parse_card(target.card)
    message = Message(role=Role.ROLE_USER, message_id=str(uuid4()), extensions=[AP2_EXTENSION_URI],
                      parts=[new_data_part({key: value}, "application/json") for key, value in data.items()])
    task: Task | None = None
    try:
        headers = {HTTP_EXTENSION_HEADER: AP2_EXTENSION_URI}  # the extension, requested as A2A asks
        async with httpx.AsyncClient(timeout=target.timeout, headers=headers) as http:
            config = ClientConfig(httpx_client=http, streaming=False, supported_protocol_bindings=a2a_client.BINDINGS)
            client = ClientFactory(config).create(card, [AuthInterceptor(_StoredCredential(credential))])
            async for event in client.send_message(SendMessageRequest(message=message)):
                task = event.task if event.HasField("task") else task
    except Exception as error:  # noqa: BLE001 - whatever the remote or the SDK raised, the model gets a typed error
        raise _typed(error, "buying over AP2") from None
    if task is None:
        raise ExternalTaskFailed("the merchant agent answered with no task")
    parts = list(task.status.message.parts) + [p for artifact in task.artifacts for p in artifact.parts]
    found: dict[str, Any] = {}
    for item in get_data_parts(parts):
        if isinstance(item, dict):
            found.update(item)
    if task.status.state != TaskState.TASK_STATE_COMPLETED:
        _raise_refusal(found.get(ERROR_KEY), a2a_client.state_name(task.status.state))
    return found


def _raise_refusal(error: Any, state: str) -> None:
    error = error if isinstance(error, dict) else {}
    remote = error.get("details") if isinstance(error.get("details"), dict) else {}
    details = {**remote, "state": state, "remote_code": error.get("code")}  # ours: the merchant's cannot stand in
    message = f"the merchant refused: {error.get('message') or state}"[:1000]
    if error.get("code") == MandateRefused.code:
        raise MandateRefused(message, details)
    raise ExternalTaskFailed(message, details)


def _checked_checkout(offer: Any, keys: JWKSet) -> dict[str, Any]:
    """The checkout's verified claims, once it is what the merchant's data part says it is."""
    if not isinstance(offer, dict) or not isinstance(offer.get("checkout_jwt"), str):
        raise ExternalTaskFailed(f"the merchant answered with no {CHECKOUT_KEY}")
    claims = verified(offer["checkout_jwt"], keys, "checkout")
    merchant, total = claims.get("merchant") or {}, claims.get("total") or {}
    if offer.get("checkout_hash") != _digest(offer["checkout_jwt"]) or merchant.get("id") != offer.get("merchant_id") \
            or claims.get("iss") != merchant.get("id") or not isinstance(total.get("amount"), int):
        raise MerchantUntrusted("the checkout's hash, merchant or total is not what the merchant's answer says")
    return claims


async def purchase(work: RunWork, args: Ap2PurchaseArgs) -> dict[str, Any]:
    target = await tools_external.find(work, args.merchant)
    if target is None or target.status != "active":
        raise ExternalAgentNotFound(f"no active external agent {args.merchant!r} in this organization")
    uri = jwks_uri(target.card)
    items = [{"id": item.product_id, "quantity": item.quantity} for item in args.items]
    credential = await external_credential(work.runtime, target)
    offer = (await _ask(target, credential, {CHECKOUT_REQUEST_KEY: {"items": items}})).get(CHECKOUT_KEY)
    keys = await _keys(uri)  # read once the merchant signed: it may have made its keys for this first checkout
    checkout = _checked_checkout(offer, keys)
    holding = service_identity("agents", work.run.org_id, ("mandates:sign",), on_behalf_of=work.agent.id)
    signing = {"checkout_jwt": offer["checkout_jwt"], "nonce": offer.get("nonce")}
    sent: dict[str, Any] = {}
    if args.checkout_mandate_id is not None:  # the contents authorized first, refused here if the mandate forbids
        checked_out = await work.ctx.call(AP2_CLOSE, {"mandate_id": args.checkout_mandate_id, **signing},
                                          auth=holding, protocol=Protocol.AP2)
        sent[CHECKOUT_MANDATE_KEY] = checked_out.mandate
    closed = await work.ctx.call(AP2_CLOSE, {"mandate_id": args.mandate_id, **signing}, auth=holding,
                                 protocol=Protocol.AP2)
    try:
        paid = await _ask(target, credential, {**sent, PAYMENT_MANDATE_KEY: closed.mandate,
                                               CHECKOUT_ID_KEY: offer.get("checkout_id")})
    except OneError as error:
        if refused_for_good(error):
            await _release(work, holding, closed.id, error)
        raise
    merchant_id = checkout["merchant"]["id"]
    receipt = _receipt(paid.get("receipt_jwt"), keys, closed.mandate, merchant_id, "receipt")
    total = checkout["total"]
    result = {"status": "paid", "protocol": "ap2", "merchant": target.slug, "merchant_id": checkout["iss"],
              "checkout_id": offer.get("checkout_id"), "amount_minor": total["amount"],
              "currency": total["currency"], "items": checkout.get("line_items") or [], "mandate_id": str(closed.id),
              "receipt_id": paid.get("receipt_id"), "receipt": receipt, "receipt_jwt": paid["receipt_jwt"]}
    if CHECKOUT_MANDATE_KEY in sent:
        result |= {"checkout_receipt": _receipt(paid.get("checkout_receipt_jwt"), keys, sent[CHECKOUT_MANDATE_KEY],
                                                merchant_id, "checkout receipt"),
                   "checkout_receipt_id": paid.get("checkout_receipt_id"),
                   "checkout_receipt_jwt": paid["checkout_receipt_jwt"]}
    await _record(work, target, result, time.time())
    return result


def _receipt(token: Any, keys: JWKSet, chain: str, merchant_id: Any, what: str) -> dict[str, Any]:
    """The claims of the merchant's signed receipt, once it is a successful receipt of this chain by this merchant."""
    receipt = verified(token, keys, what)
    if receipt.get("status") != "Success" or receipt.get("reference") != _digest(chain) \
            or receipt.get("iss") != merchant_id:
        raise MerchantUntrusted(f"the {what} is not a successful {what} of this mandate by this merchant",
                                {"status": receipt.get("status")})
    return receipt


def refused_for_good(error: OneError) -> bool:
    """Whether the merchant's answer says it refused the presented chain and will never accept it."""
    details = error.details if isinstance(error.details, dict) else {}
    return details.get("state") in ENDED_REFUSED and details.get("remote_code") in FINAL_REFUSALS \
        and details.get("reason") not in UNKNOWN_OUTCOME_REASONS


async def _release(work: RunWork, holding: Any, closed_id: Any, refusal: OneError) -> None:
    """Give the refused closed mandate's use back to the open mandate; the refusal stays the tool's answer."""
    reason = str(refusal.details.get("reason") or refusal.details.get("remote_code"))[:100]
    try:
        await work.ctx.call(AP2_RELEASE, {"mandate_id": str(closed_id), "reason": reason}, auth=holding,
                            protocol=Protocol.AP2)
    except OneError as error:  # still counted: the budget errs on the side of spending less
        log.warning("ap2: the refused mandate %s of run %s was not released: %r", closed_id, work.run.id, error)
        return
    refusal.details["mandate_use_released"] = True


async def _record(work: RunWork, target: ExternalAgentRow, paid: dict[str, Any], now: float) -> None:
    """The purchase in the buyer's org: a `payment_event` (outgoing) and the `transacted` connection."""
    cited = {"protocol": "ap2", "checkoutId": paid["checkout_id"], "receiptId": paid["receipt_id"],
             "mandateId": paid["mandate_id"], "merchantId": paid["merchant_id"],
             "reference": paid["receipt"]["reference"], "amountMinor": paid["amount_minor"],
             "currency": paid["currency"], "runId": str(work.run.id)}
    amount = paid["amount_minor"] / 10 ** exponent(paid["currency"])
    async with work.ctx.transaction() as tx:
        await tx.emit(EventType.PAYMENT_EVENT, target_id=target.id, target_type=target.type, protocol=Protocol.AP2,
                      metadata={**cited, "status": "processed", "direction": "outgoing", "amount": amount,
                                "agentId": str(work.agent.id), "paidAt": int(now)})
    try:
        await work.ctx.call(CONNECTION_CREATE, {
            "from_id": str(work.agent.id), "to_id": str(target.id), "type": "transacted",
            "metadata": {**cited, "transactionType": "payment", "platform": target.provider or "unknown"},
        }, auth=work.service_auth, protocol=Protocol.NATIVE)
    except OneError as error:  # the purchase stands without its graph record; its payment_event cites the receipt
        log.warning("ap2: the transacted connection of run %s was not recorded: %r", work.run.id, error)
