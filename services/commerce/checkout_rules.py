"""What a checkout session's inputs mean: its line items, fulfillment options, messages, status and ACP body.

Pure functions of the buyer's inputs and the catalog (no SQL, no bus): the service evaluates a session
after every change and stores the answer. How the open statuses of the 2026-04-17 enum are decided
(the first that applies):

- `not_ready_for_payment`: a problem the agent must fix: an unknown product (`not_found`), out of stock
  (`out_of_stock`), over the stock or the per-order cap (`quantity_exceeded`), a product in another
  currency or no fulfillment option all items share (`unsupported`), an invalid address or option
  (`invalid`);
- `incomplete`: something is missing: the buyer (an email), the fulfillment option (when there is a
  choice), the shipping address (`missing`);
- `requires_escalation`: an age-restricted product: the buyer continues on the merchant's site
  (`continue_url`, message `age_verification_required`);
- `authentication_required`: the buyer says it must sign in (`buyer.authentication_status =
  requires_signin`, message `requires_sign_in`);
- `ready_for_payment` otherwise.
The other statuses (`complete_in_progress`, `completed`, `pending_approval`, `in_progress`, `canceled`,
`expired`) are set by `complete`, `cancel` and time: service_checkout.py.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from services.commerce import totals as money
from services.commerce.checkout_discounts import Priced, apply_codes, submitted_codes
from shared.contracts.commerce.acp_schema import API_VERSION
from shared.contracts.commerce.products import SELLABLE, FulfillmentOption, Product

_BLOCKING = ("not_found", "out_of_stock", "quantity_exceeded", "unsupported", "invalid")
_US_POSTAL = re.compile(r"^\d{5}(-\d{4})?$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


@dataclass(slots=True)
class Inputs:
    """What the buyer's agent said, as stored: items (product id, quantity), buyer, fulfillment, extras."""

    currency: str
    items: list[dict[str, Any]]
    buyer: dict[str, Any] | None = None
    fulfillment_details: dict[str, Any] | None = None
    selected: list[dict[str, Any]] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Evaluation:
    status: str
    body: dict[str, Any]
    total: int
    discount_id: UUID | None = None
    """The applied discount code's discount, redeemed at complete."""
    held: dict[UUID, int] = field(default_factory=dict)
    """What the session holds of each counted product once it is ready for payment (product -> quantity)."""


def aggregate_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """ACP request `Item`s (one per unit, no quantity in the 2026-04-17 bundle) -> [{id, quantity}] in first-seen
    order. A request's `name` and `unit_amount` are dropped here: the catalog prices the session."""
    counted: dict[str, int] = {}
    for item in items:
        counted[item["id"]] = counted.get(item["id"], 0) + 1
    return [{"id": item_id, "quantity": quantity} for item_id, quantity in counted.items()]


def product_id(item_id: str) -> UUID | None:
    try:
        return UUID(item_id)
    except ValueError:
        return None


def _message(code: str, content: str, param: str, resolution: str = "recoverable") -> dict[str, Any]:
    return {"type": "error", "code": code, "param": param, "resolution": resolution, "content_type": "plain",
            "content": content}


def _line_item(item: dict[str, Any], product: Product, rate_bps: int, discount: int,
               available: int | None) -> tuple[dict[str, Any], money.LineAmounts]:
    amounts = money.line_amounts(product.price, item["quantity"], rate_bps, discount)
    line: dict[str, Any] = {
        "id": item["id"], "item": {"id": item["id"], "name": product.name, "unit_amount": product.price},
        "quantity": item["quantity"], "name": product.name, "unit_amount": product.price, "product_id": item["id"],
        "availability_status": "out_of_stock" if available == 0 else product.availability.status,
        "totals": money.line_totals(amounts),
    }
    if product.sku:
        line["sku"] = product.sku
    if product.description:
        line["description"] = product.description
    if product.images:
        line["images"] = product.images
    if available is not None:
        line["available_quantity"] = available
    if product.max_quantity_per_order is not None:
        line["max_quantity_per_order"] = product.max_quantity_per_order
    return line, amounts


def _stock_problem(item: dict[str, Any], product: Product, param: str, available: int | None) -> dict[str, Any] | None:
    if product.availability.status not in SELLABLE or available == 0:
        return _message("out_of_stock", f"{product.name} is out of stock", param)
    if available is not None and item["quantity"] > available:
        return _message("quantity_exceeded", f"only {available} of {product.name} in stock", param)
    if product.max_quantity_per_order is not None and item["quantity"] > product.max_quantity_per_order:
        return _message("quantity_exceeded", f"at most {product.max_quantity_per_order} of {product.name} per order",
                        param)
    return None


def _shared_options(products: list[Product]) -> list[FulfillmentOption]:
    """The fulfillment options every product of the session offers (by id), in the first product's order."""
    if not products:
        return []
    common = set.intersection(*({option.id for option in p.fulfillment_options} for p in products))
    return [option for option in products[0].fulfillment_options if option.id in common]


def address_problem(address: Mapping[str, Any]) -> dict[str, Any] | None:
    """An invalid shipping address (the schema already requires its fields): country, US state / ZIP, blanks."""
    base = "$.fulfillment_details.address"
    for name in ("name", "line_one", "city", "postal_code"):
        if not str(address.get(name, "")).strip():
            return _message("invalid", f"the address's {name} is blank", f"{base}.{name}", "requires_buyer_input")
    if not _COUNTRY.match(str(address.get("country", ""))):
        return _message("invalid", "the country must be an ISO 3166-1 alpha-2 code, e.g. US", f"{base}.country",
                        "requires_buyer_input")
    if address["country"] == "US":
        if not _US_POSTAL.match(str(address.get("postal_code", ""))):
            return _message("invalid", "a US postal code is 5 digits (or ZIP+4)", f"{base}.postal_code",
                            "requires_buyer_input")
        if not re.fullmatch(r"[A-Z]{2}", str(address.get("state", ""))):
            return _message("invalid", "a US state is its 2-letter code, e.g. CA", f"{base}.state",
                            "requires_buyer_input")
    return None


def _selected_option(inputs: Inputs, options: list[FulfillmentOption], item_ids: list[str],
                     messages: list[dict[str, Any]]) -> tuple[FulfillmentOption | None, list[dict[str, Any]]]:
    """The chosen option (the only one when there is no choice) and the `selected_fulfillment_options` to echo."""
    if not options:
        return None, []
    if not inputs.selected:
        if len(options) == 1:
            only = options[0]
            return only, [{"type": only.type, "option_id": only.id, "item_ids": item_ids}]
        messages.append(_message("missing", "choose a fulfillment option", "$.selected_fulfillment_options"))
        return None, []
    choice = inputs.selected[0]
    option = next((o for o in options if o.id == choice["option_id"] and o.type == choice["type"]), None)
    if option is None:
        messages.append(_message("invalid", f"no {choice['type']} option {choice['option_id']!r} for these items",
                                 "$.selected_fulfillment_options[0].option_id"))
        return None, []
    return option, [{"type": option.type, "option_id": option.id, "item_ids": item_ids}]


def evaluate(inputs: Inputs, catalog: Mapping[UUID, Product | None], tax_rates: Mapping[str, int],
             links_base: str, *, discounts: Mapping[str, Mapping[str, Any]] | None = None,
             held_elsewhere: Mapping[UUID, int] | None = None, now: datetime | None = None) -> Evaluation:
    """The priced session and its status (the open ones only; see the module's docstring). `discounts`: the org's
    discounts among the submitted codes (by lower-case code); `held_elsewhere`: what other open sessions hold of
    each counted product (taken off its stock here)."""
    messages: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    amounts: list[money.LineAmounts] = []
    products: list[Product] = []
    priced: list[tuple[int, dict[str, Any], Product, int | None]] = []
    for index, item in enumerate(inputs.items):
        param = f"$.line_items[{index}]"
        found = product_id(item["id"])
        product = catalog.get(found) if found else None
        if product is None or not product.sellable:
            messages.append(_message("not_found", f"no product {item['id']!r} is for sale", param))
            continue
        if product.currency != inputs.currency:
            messages.append(_message("unsupported", f"{product.name} is sold in {product.currency}", param))
        stock = product.availability.quantity
        available = None if stock is None else max(0, stock - (held_elsewhere or {}).get(product.id, 0))
        if problem := _stock_problem(item, product, param, available):
            messages.append(problem)
        priced.append((index, item, product, available))
    discounting = apply_codes(submitted_codes(inputs.extras), discounts or {},
                              [Priced(p.id, p.price * item["quantity"]) for _, item, p, _ in priced], inputs.currency,
                              now or datetime.now(UTC))
    held: dict[UUID, int] = {}
    for (_, item, product, available), discount in zip(priced, discounting.per_line, strict=True):
        rate = tax_rates.get(product.tax_category, tax_rates.get("standard", 0))
        line, line_amount = _line_item(item, product, rate, discount, available)
        lines.append(line)
        amounts.append(line_amount)
        products.append(product)
        if available is not None:
            held[product.id] = held.get(product.id, 0) + item["quantity"]
    if not inputs.items:
        messages.append(_message("missing", "add at least one item", "$.line_items"))
    options = _shared_options(products)
    if products and not options:
        messages.append(_message("unsupported", "no fulfillment option serves every item", "$.line_items"))
    chosen, selected = _selected_option(inputs, options, [line["id"] for line in lines], messages)
    address = (inputs.fulfillment_details or {}).get("address")
    if chosen is not None and chosen.type == "shipping":
        if address is None:
            messages.append(_message("missing", "a shipping address is needed", "$.fulfillment_details.address",
                                     "requires_buyer_input"))
        elif problem := address_problem(address):
            messages.append(problem)
    if not (inputs.buyer or {}).get("email"):
        messages.append(_message("missing", "the buyer's email is needed", "$.buyer", "requires_buyer_input"))
    session = money.session_amounts(amounts, chosen.amount if chosen else 0)
    body: dict[str, Any] = {
        "currency": inputs.currency, "protocol": {"version": API_VERSION}, "line_items": lines,
        "fulfillment_options": [_option(o) for o in options], "totals": money.session_totals(
            session, chosen.title if chosen else None),
        "links": [{"type": "terms_of_use", "url": f"{links_base}/terms"},
                  {"type": "privacy_policy", "url": f"{links_base}/privacy"}],
    }
    if selected:
        body["selected_fulfillment_options"] = selected
    if discounting.response is not None:
        body["discounts"] = discounting.response
    status = _status(inputs, products, messages, body, links_base)
    body["messages"] = messages
    return Evaluation(status=status, body=body, total=session.total, discount_id=discounting.discount_id,
                      held=held if status == "ready_for_payment" else {})


def _status(inputs: Inputs, products: list[Product], messages: list[dict[str, Any]], body: dict[str, Any],
            links_base: str) -> str:
    codes = {m["code"] for m in messages}
    if codes & set(_BLOCKING):
        return "not_ready_for_payment"
    if "missing" in codes:
        return "incomplete"
    restricted = [p for p in products if p.age_restricted]
    if restricted:
        messages.append(_message("age_verification_required", f"{restricted[0].name} needs the buyer's age verified "
                                 "on the merchant's site", "$.line_items", "requires_buyer_input"))
        body["continue_url"] = f"{links_base}/checkout"
        return "requires_escalation"
    if (inputs.buyer or {}).get("authentication_status") == "requires_signin":
        messages.append(_message("requires_sign_in", "the buyer must sign in to the merchant's site", "$.buyer",
                                 "requires_buyer_input"))
        body["continue_url"] = f"{links_base}/sign-in"
        return "authentication_required"
    return "ready_for_payment"


def _option(option: FulfillmentOption) -> dict[str, Any]:
    shaped: dict[str, Any] = {"type": option.type, "id": option.id, "title": option.title,
                              "totals": money.option_totals(option.amount, option.title)}
    if option.carrier and option.type == "shipping":
        shaped["carrier"] = option.carrier
    return shaped
