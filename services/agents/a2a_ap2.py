"""AP2 over A2A, the merchant's side: an org's agent that sells (`ap2_merchant` in its tools) answers AP2 data parts.

A message to the agent's A2A server carrying `ap2.CheckoutRequest` (products and quantities),
`ap2.mandates.CheckoutMandateSdJwt` (a closed checkout mandate chain) or `ap2.mandates.PaymentMandateSdJwt` (a
closed payment mandate chain), each mandate with the `checkout_id` it is for, is the platform's merchant's to
answer, not the agent's model's: the products are priced from the org's catalog (`commerce.products.get`), the
checkout is signed by commerce (`ap2.checkout.create`) and returned as an `ap2.checkout` data part; a presented
mandate is verified by commerce (`ap2.mandate.present`, `kind: checkout | payment`: the trust list, key binding,
nonce, checkout hash, constraints) and answered with the signed receipt (`ap2.CheckoutReceipt` +
`checkout_receipt_jwt`, `ap2.PaymentReceipt` + `receipt_jwt`); both mandates in one message: the checkout
mandate first. The agents service acts as the merchant agent (its own identity, the agent as actor): an A2A
caller (a partner's key) may talk to the agent, and needs no commerce rights.

The answer is a task that has ended at once (completed, or failed with an `ap2.error` data part naming the
reason): no run, no model. Commerce keeps the checkout, the mandates and the receipts, and logs them
(`mandate_event`, `payment_event` with `protocol: ap2`); here the task is stored as the agent's other tasks are
(`agents.a2a_tasks`, its answer in `metadata.answered`, so `GetTask` / `ListTasks` find it) in one transaction
with the message's `communication_event` (`messageType: ap2_checkout | ap2_checkout_mandate | ap2_payment`,
`protocol: a2a`). See docs/ap2_agents.md.
"""

import hashlib
from typing import Any
from uuid import UUID

from services.agents import repository as agents_repo, repository_a2a as tasks_repo
from services.agents.a2a_tasks import to_task
from services.agents.service_agents import load_agent
from shared.contracts.a2a import A2aSend, A2aSkill, A2aTask
from shared.contracts.agents import AgentRef
from shared.contracts.agents.ap2 import (
    AP2_EXTENSION_URI,
    AP2_KEYS,
    AP2_MERCHANT_SKILL,
    AP2_MERCHANT_TOOL,
    CHECKOUT_ID_KEY,
    CHECKOUT_KEY,
    CHECKOUT_MANDATE_KEY,
    CHECKOUT_RECEIPT_KEY,
    CHECKOUT_REQUEST_KEY,
    ERROR_KEY,
    PAYMENT_MANDATE_KEY,
    RECEIPT_KEY,
)
from shared.contracts.commerce.ap2 import AP2_CHECKOUT_CREATE, AP2_PRESENT, Receipt
from shared.contracts.commerce.products import PRODUCT_GET, Product
from shared.kernel.envelope import AuthContext, Protocol
from shared.kernel.errors import InvalidRequest, OneError
from shared.kernel.ids import uuid7
from shared.kernel.ontology import EventType
from shared.runtime.context import WorkContext, service_identity

MERCHANT_GRANTS = ("mandates:checkout", "mandates:present", "products:read", "things:read")  # a product is a thing
MAX_ITEMS = 50
MANDATES = ((CHECKOUT_MANDATE_KEY, "checkout"), (PAYMENT_MANDATE_KEY, "payment"))
"""The mandate keys and the `kind` commerce verifies each as, in the order they are presented."""


def data_of(message: dict[str, Any]) -> dict[str, Any]:
    """The message's data parts merged (each AP2 key sits in a data part of its own, as AP2's samples send them)."""
    merged: dict[str, Any] = {}
    for part in message.get("parts") or []:
        if isinstance(part, dict) and isinstance(part.get("data"), dict):
            merged.update(part["data"])
    return merged


def asks(message: dict[str, Any]) -> bool:
    """Whether the message is an AP2 request for the merchant (it carries a request or a mandate data part)."""
    data = data_of(message)
    return any(key in data for key in AP2_KEYS)


def sells(config: dict[str, Any]) -> bool:
    return AP2_MERCHANT_TOOL in (config.get("tools") or [])


def skills(config: dict[str, Any]) -> list[A2aSkill]:
    """The card's skill of a merchant agent (the gateway declares the AP2 extension for it)."""
    if not sells(config):
        return []
    return [A2aSkill(id=AP2_MERCHANT_SKILL, name="AP2 merchant", tags=["ap2", "commerce", "merchant"],
                     description=f"Sells the organization's products with AP2 ({AP2_EXTENSION_URI}): send "
                                 f"`{CHECKOUT_REQUEST_KEY}` for a signed checkout; then, with its "
                                 f"`{CHECKOUT_ID_KEY}`, `{CHECKOUT_MANDATE_KEY}` for a signed "
                                 f"`{CHECKOUT_RECEIPT_KEY}` and `{PAYMENT_MANDATE_KEY}` for a signed "
                                 f"`{RECEIPT_KEY}` (data parts).")]


def _merchant(org_id: UUID, agent_id: UUID) -> AuthContext:
    return service_identity("agents", org_id, MERCHANT_GRANTS, on_behalf_of=agent_id)


async def answer(ctx: WorkContext, payload: A2aSend, context_id: UUID | None) -> A2aTask:
    """The AP2 request answered as an ended task (`asks(payload.message)` is true; `a2a:send` checked), stored as a
    task of the agent (`context_id`: the message's, checked; else a new one)."""
    org_id = ctx.auth.org_id
    async with ctx.transaction() as tx:
        agent = await load_agent(tx, AgentRef(slug=payload.agent))
        config = (await agents_repo.current_configs(tx.session, org_id, [agent.id])).get((agent.id, "production"))
    if config is None or not sells(config.config):
        raise InvalidRequest(f"agent {payload.agent} does not sell over AP2", {"extension": AP2_EXTENSION_URI})
    data, auth = data_of(payload.message), _merchant(org_id, agent.id)
    kinds = [kind for key, kind in MANDATES if key in data]
    done: dict[str, Any] = {}  # what was answered before a refusal (a checkout receipt, the payment refused)
    state, text = "TASK_STATE_COMPLETED", None
    try:
        if kinds:
            await _present(ctx, auth, data, done)
        else:
            done.update(await _checkout(ctx, auth, agent.name, data[CHECKOUT_REQUEST_KEY]))
    except OneError as error:
        state, text = "TASK_STATE_FAILED", error.message
        done[ERROR_KEY] = {"code": error.code, "message": error.message, "details": error.details}
    task_id, context_id = uuid7(), context_id or uuid7()
    received = {**_kept(payload.message), "taskId": str(task_id), "contextId": str(context_id),
                "role": payload.message.get("role") or "ROLE_USER"}
    kind = "ap2_payment" if "payment" in kinds else "ap2_checkout_mandate" if kinds else "ap2_checkout"
    async with ctx.transaction() as tx:  # the task and the exchange, beside what commerce logged of it
        task = await tasks_repo.insert_task(tx.session, {
            "id": task_id, "org_id": org_id, "agent_id": agent.id, "agent_slug": agent.slug, "run_id": None,
            "context_id": context_id, "state": state, "history": [received], "metadata": {
                "caller": payload.caller.model_dump(exclude_none=True),
                "answered": {"name": "ap2", "data": done, "text": text,
                             "metadata": {"extension": AP2_EXTENSION_URI}}}})
        await tx.emit(EventType.COMMUNICATION_EVENT, target_id=agent.id, target_type=agent.type, metadata={
            "messageType": kind, "direction": "inbound", "protocol": "a2a", "extension": AP2_EXTENSION_URI,
            "taskId": str(task_id), "state": state, "callerKeyId": payload.caller.key_id})
    return to_task(task, None, history_length=payload.history_length)


def _kept(message: dict[str, Any]) -> dict[str, Any]:
    """The message as the task's history keeps it: a presented mandate chain by its SHA-256 only (a credential is
    never stored; commerce keeps its hash too)."""
    keys = dict(MANDATES)
    parts = []
    for part in message.get("parts") or []:
        data = part.get("data") if isinstance(part, dict) else None
        if isinstance(data, dict) and keys.keys() & data.keys():
            part = {**part, "data": {key: f"sha256:{hashlib.sha256(value.encode()).hexdigest()}"
                                     if key in keys and isinstance(value, str) else value
                                     for key, value in data.items()}}
        parts.append(part)
    return {**message, "parts": parts}


async def _checkout(ctx: WorkContext, auth: AuthContext, merchant_name: str, request: Any) -> dict[str, Any]:
    items = request.get("items") if isinstance(request, dict) else None
    if not isinstance(items, list) or not 0 < len(items) <= MAX_ITEMS:
        raise InvalidRequest(f"{CHECKOUT_REQUEST_KEY} is {{\"items\": [{{\"id\", \"quantity\"}}]}} with 1 to "
                             f"{MAX_ITEMS} items")
    lines, currencies = [], set()
    for item in items:
        product_id, quantity = _item(item)
        product: Product = await ctx.call(PRODUCT_GET, {"id": product_id}, auth=auth, protocol=Protocol.NATIVE)
        if not product.sellable or product.availability.status == "out_of_stock":
            raise InvalidRequest(f"product {product.id} is not for sale", {"product_id": str(product.id)})
        if product.max_quantity_per_order and quantity > product.max_quantity_per_order:
            raise InvalidRequest(f"at most {product.max_quantity_per_order} of product {product.id} per order")
        currencies.add(product.currency.upper())
        lines.append({"id": str(product.id), "title": product.name, "price": product.price, "quantity": quantity})
    if len(currencies) != 1:
        raise InvalidRequest("the products of one checkout must have one currency", {"currencies": sorted(currencies)})
    total = sum(line["price"] * line["quantity"] for line in lines)
    made = await ctx.call(AP2_CHECKOUT_CREATE, {"amount": total, "currency": currencies.pop(), "items": lines,
                                                "merchant_name": merchant_name[:200]}, auth=auth,
                          protocol=Protocol.AP2)
    return {CHECKOUT_KEY: {"checkout_id": str(made.id), "checkout_jwt": made.checkout_jwt,
                           "checkout_hash": made.checkout_hash, "nonce": made.nonce, "merchant_id": made.merchant_id,
                           "amount": made.amount, "currency": made.currency, "items": lines,
                           "expires_at": made.expires_at.isoformat()}}


def _item(item: Any) -> tuple[str, int]:
    """(product id, quantity) of a requested item; numbers come as floats through protobuf's `Value`."""
    if not isinstance(item, dict):
        raise InvalidRequest("an item is {\"id\", \"quantity\"}")
    quantity = item.get("quantity", 1)
    try:
        product_id = str(UUID(str(item.get("id"))))
    except ValueError:
        raise InvalidRequest("an item's id is a product id of the merchant", {"id": str(item.get("id"))[:100]}) \
            from None
    if not isinstance(quantity, int | float) or quantity != int(quantity) or not 1 <= quantity <= 1000:
        raise InvalidRequest("an item's quantity is a whole number from 1 to 1000")
    return product_id, int(quantity)


async def _present(ctx: WorkContext, auth: AuthContext, data: dict[str, Any], done: dict[str, Any]) -> None:
    """Each mandate the message carries presented for its checkout (the checkout mandate first); each receipt
    added to `done` as it comes (a refused payment after an accepted checkout mandate keeps the checkout receipt)."""
    checkout_id = data.get(CHECKOUT_ID_KEY)
    for key, kind in MANDATES:
        if key not in data:
            continue
        chain = data[key]
        if not isinstance(chain, str) or not isinstance(checkout_id, str):
            raise InvalidRequest(f"{key} (the mandate chain) comes with the `{CHECKOUT_ID_KEY}` it is for")
        receipt: Receipt = await ctx.call(AP2_PRESENT, {"checkout_id": checkout_id, "mandate": chain, "kind": kind},
                                          auth=auth, protocol=Protocol.AP2)
        prefix, claims_key = ("checkout_", CHECKOUT_RECEIPT_KEY) if kind == "checkout" else ("", RECEIPT_KEY)
        done.update({claims_key: receipt.receipt, f"{prefix}receipt_jwt": receipt.receipt_jwt,
                     f"{prefix}receipt_id": str(receipt.id), CHECKOUT_ID_KEY: str(receipt.checkout_id)})
