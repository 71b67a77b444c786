"""`one products add|list|show` and `one checkout list|show`: the org's catalog and its ACP checkouts, through the SDK.

Prices are given and shown as money in the product's currency (`19.99` usd = 1999 minor units, what ACP and
`--json` carry). A shipping option is `ID:TITLE:PRICE` (`--shipping standard:Standard:5`, repeatable); a
product without one is delivered digitally. `one checkout show` prints a session as ACP answers it: its
status, line items, totals and messages (`--json`: the ACP `CheckoutSession` itself).
"""

from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

import typer

from shared.tools.cli_output import EXIT_USAGE, Column, act, fail, print_json, print_record, print_table
from shared.tools.cli_webhooks import webhook_app

products_app = typer.Typer(help="The catalog: products sold through ACP checkout.", no_args_is_help=True)
checkout_app = typer.Typer(help="ACP checkout sessions: list and show.", no_args_is_help=True)
checkout_app.add_typer(webhook_app, name="webhook")  # one checkout webhook set|show|deliveries

JsonOption = typer.Option(False, "--json", help="The reply as JSON (the contract's model).")
PRODUCT_COLUMNS = [Column("id", "id"), Column("name", "text"), Column("price"), Column("stock"), Column("status")]
SESSION_COLUMNS = [Column("id", "id"), Column("status"), Column("total"), Column("items"), Column("created")]


def minor(amount: str, currency: str, option: str = "--price") -> int:
    """Money as minor units of `currency` (`19.99` usd -> 1999); more decimals than the currency has is refused."""
    from shared.contracts.commerce.products import exponent

    try:
        value = Decimal(amount).scaleb(exponent(currency))
    except InvalidOperation:
        fail(f"{option} {amount!r} is not an amount", "give money as a number, e.g. 19.99", EXIT_USAGE)
    if not value.is_finite() or value < 0 or value != value.to_integral_value():
        fail(f"{option} {amount!r} is not a non-negative amount in {currency}", "e.g. 19.99 (usd) or 500 (jpy)",
             EXIT_USAGE)
    return int(value)


def money(units: int, currency: str) -> str:
    from shared.contracts.commerce.products import exponent

    return f"{Decimal(units).scaleb(-exponent(currency)):f} {currency}"


def _shipping(options: list[str], currency: str) -> list[dict[str, Any]]:
    parsed = []
    for option in options:
        parts = option.split(":")
        if len(parts) != 3 or not parts[0] or not parts[1]:
            fail(f"--shipping {option!r} is not ID:TITLE:PRICE", "e.g. --shipping standard:Standard:5", EXIT_USAGE)
        parsed.append({"id": parts[0], "type": "shipping", "title": parts[1],
                       "amount": minor(parts[2], currency, "--shipping")})
    return parsed


def show_product(product: Any, as_json: bool) -> None:
    if as_json:
        print_json(product)
        return
    stock = product.availability.status + (f" ({product.availability.quantity})"
                                           if product.availability.quantity is not None else "")
    print_record({"id": str(product.id), "name": product.name, "status": product.status,
                  "price": money(product.price, product.currency), "availability": stock,
                  "fulfillment": ", ".join(f"{o.id} ({money(o.amount, product.currency)})"
                                           for o in product.fulfillment_options),
                  "tax category": product.tax_category, **({"sku": product.sku} if product.sku else {}),
                  **({"age restricted": "yes"} if product.age_restricted else {})})


@products_app.command("add")
def add(
    name: str = typer.Argument(..., help="The product's name, as buyers see it."),
    price: str = typer.Option(..., "--price", help="Unit price in the currency, e.g. 19.99."),
    currency: str = typer.Option("usd", "--currency", help="ISO 4217, e.g. usd, eur, jpy."),
    stock: int = typer.Option(None, "--stock", min=0, help="Units in stock (unset: not counted)."),
    shipping: list[str] = typer.Option([], "--shipping", help="A shipping option ID:TITLE:PRICE (repeatable); "
                                                              "none = digital delivery."),
    tax_category: str = typer.Option("standard", "--tax-category", help="A key of ONE_COMMERCE_TAX_RATES."),
    max_per_order: int = typer.Option(None, "--max-per-order", min=1),
    age_restricted: bool = typer.Option(False, "--age-restricted", help="Buyers verify their age on your site."),
    sku: str = typer.Option(None, "--sku"),
    description: str = typer.Option(None, "--description"),
    draft: bool = typer.Option(False, "--draft", help="Keep it out of checkouts for now."),
    as_json: bool = JsonOption,
) -> None:
    """Add a product to the catalog (a `product` thing in the graph with ACP's selling properties)."""
    from shared.contracts.commerce.products import PRODUCT_CREATE, ProductCreate

    currency = currency.lower()
    body: dict[str, Any] = {"name": name, "price": minor(price, currency), "currency": currency,
                            "tax_category": tax_category, "status": "draft" if draft else "active",
                            "availability": {"status": "in_stock" if stock != 0 else "out_of_stock",
                                             "quantity": stock}}
    if shipping:
        body["fulfillment_options"] = _shipping(shipping, currency)
    optional = {"max_quantity_per_order": max_per_order, "sku": sku, "description": description,
                "age_restricted": age_restricted or None}
    body |= {k: v for k, v in optional.items() if v is not None}
    ProductCreate.model_validate(body)  # refused here, naming the option at fault
    show_product(act(lambda one: one.request(PRODUCT_CREATE, body)), as_json)


@products_app.command("list")
def list_products(cursor: UUID = typer.Option(None, help="The next page, as the last page printed it."),
                  limit: int = typer.Option(50, min=1, max=200), as_json: bool = JsonOption) -> None:
    """The catalog: id, name, price, stock, status."""
    from shared.contracts.commerce.products import PRODUCT_LIST

    query: dict[str, Any] = {"limit": limit, **({"cursor": str(cursor)} if cursor else {})}
    page = act(lambda one: one.request(PRODUCT_LIST, query))
    if as_json:
        print_json(page)
        return
    print_table(PRODUCT_COLUMNS, [(str(p.id), p.name, money(p.price, p.currency),
                                   p.availability.quantity if p.availability.quantity is not None
                                   else p.availability.status, p.status) for p in page.products],
                empty="no products")
    if page.next_cursor:
        print(f"next page: --cursor {page.next_cursor}")


@products_app.command("show")
def show(product_id: UUID, as_json: bool = JsonOption) -> None:
    """One product and what a checkout reads of it."""
    from shared.contracts.commerce.products import PRODUCT_GET

    show_product(act(lambda one: one.request(PRODUCT_GET, {"id": str(product_id)})), as_json)


@checkout_app.command("list")
def list_sessions(status: str = typer.Option(None, "--status", help="Only sessions in this ACP status."),
                  limit: int = typer.Option(50, min=1, max=200), as_json: bool = JsonOption) -> None:
    """The org's checkout sessions, newest first: id, status, total, units, when created."""
    from shared.contracts.commerce.acp import CHECKOUT_LIST

    page = act(lambda one: one.request(CHECKOUT_LIST, {"limit": limit, **({"status": status} if status else {})}))
    if as_json:
        print_json(page)
        return
    print_table(SESSION_COLUMNS, [(s.id, s.status, money(s.total, s.currency), s.items,
                                   s.created_at.strftime("%Y-%m-%d %H:%M")) for s in page.sessions],
                empty="no checkout sessions")


@checkout_app.command("show")
def show_session(session_id: str, as_json: bool = JsonOption) -> None:
    """One checkout session as ACP answers it: status, line items, totals, messages, order."""
    from shared.contracts.commerce.acp import CHECKOUT_GET

    session = act(lambda one: one.request(CHECKOUT_GET, {"id": session_id})).session
    if as_json:
        print_json(session)
        return
    currency = session["currency"]
    print_record({"id": session["id"], "status": session["status"],
                  **({"order": session["order"]["id"]} if "order" in session else {}),
                  **{t["display_text"].lower(): money(t["amount"], currency) for t in session["totals"]},
                  "expires": session.get("expires_at")})
    print_table([Column("item", "id"), Column("name", "text"), Column("qty"), Column("price")],
                [(line["id"], line["name"], line["quantity"], money(line["unit_amount"], currency))
                 for line in session["line_items"]])
    for message in session["messages"]:
        print(f"{message['type']}: {message.get('code', '')} {message.get('param', '')}: {message['content']}")
