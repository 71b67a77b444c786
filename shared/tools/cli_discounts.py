"""`one discounts add|list|show|update`: the org's discount codes, which ACP checkout applies (`discounts.codes`).

A code is a percentage (`--percent 20`) or a fixed amount in a currency (`--amount 5 --currency usd`, money as
`one products` takes it), optionally valid from / until (ISO 8601), capped (`--max-redemptions`), for a minimum
items subtotal (`--min-subtotal`, money), and restricted to products (`--product ID`, repeatable).
"""

from datetime import datetime
from typing import Any
from uuid import UUID

import typer

from shared.tools.cli_commerce import JsonOption, minor, money
from shared.tools.cli_output import EXIT_USAGE, Column, act, fail, print_json, print_record, print_table

discounts_app = typer.Typer(help="Discount codes applied by ACP checkout.", no_args_is_help=True)
COLUMNS = [Column("code", "id"), Column("name", "text"), Column("off"), Column("redeemed"), Column("active")]


def _off(discount: Any) -> str:
    if discount.kind == "percentage":
        return f"{discount.percent_off}%"
    return money(discount.amount_off, discount.currency)


def show_discount(discount: Any, as_json: bool) -> None:
    if as_json:
        print_json(discount)
        return
    limit = f" of {discount.max_redemptions}" if discount.max_redemptions is not None else ""
    print_record({"code": discount.code, "name": discount.name, "off": _off(discount),
                  "redeemed": f"{discount.times_redeemed}{limit}", "active": "yes" if discount.active else "no",
                  **({"from": discount.starts_at.isoformat()} if discount.starts_at else {}),
                  **({"until": discount.ends_at.isoformat()} if discount.ends_at else {}),
                  **({"minimum subtotal": discount.min_subtotal} if discount.min_subtotal else {}),
                  **({"products": ", ".join(str(p) for p in discount.product_ids)} if discount.product_ids else {})})


@discounts_app.command("add")
def add(
    code: str = typer.Argument(..., help="The code buyers enter (case-insensitive), e.g. SAVE20."),
    name: str = typer.Option(None, "--name", help="What it is called (default: the code)."),
    percent: int = typer.Option(None, "--percent", min=1, max=100, help="Percent off the covered items."),
    amount: str = typer.Option(None, "--amount", help="A fixed amount off, in --currency, e.g. 5.00."),
    currency: str = typer.Option("usd", "--currency", help="ISO 4217 of --amount and --min-subtotal."),
    starts_at: datetime = typer.Option(None, "--from", help="Valid from (ISO 8601)."),
    ends_at: datetime = typer.Option(None, "--until", help="Valid until (ISO 8601)."),
    max_redemptions: int = typer.Option(None, "--max-redemptions", min=1),
    min_subtotal: str = typer.Option(None, "--min-subtotal", help="Minimum subtotal of the covered items (money)."),
    products: list[UUID] = typer.Option([], "--product", help="Only these products (repeatable)."),
    as_json: bool = JsonOption,
) -> None:
    """Add a discount code."""
    from shared.contracts.commerce.discounts import DISCOUNT_CREATE

    if (percent is None) == (amount is None):
        fail("give exactly one of --percent and --amount", "e.g. --percent 20, or --amount 5 --currency usd",
             EXIT_USAGE)
    currency = currency.lower()
    body: dict[str, Any] = {"code": code, "name": name or code, "product_ids": [str(p) for p in products]}
    if percent is not None:
        body |= {"kind": "percentage", "percent_off": percent}
    else:
        body |= {"kind": "fixed", "amount_off": minor(amount, currency, "--amount"), "currency": currency}
    optional = {"starts_at": starts_at and starts_at.isoformat(), "ends_at": ends_at and ends_at.isoformat(),
                "max_redemptions": max_redemptions,
                "min_subtotal": minor(min_subtotal, currency, "--min-subtotal") if min_subtotal else None}
    body |= {k: v for k, v in optional.items() if v is not None}
    show_discount(act(lambda one: one.request(DISCOUNT_CREATE, body)), as_json)


@discounts_app.command("list")
def list_discounts(limit: int = typer.Option(100, min=1, max=500), as_json: bool = JsonOption) -> None:
    """The org's codes: code, name, what is off, redemptions, active."""
    from shared.contracts.commerce.discounts import DISCOUNT_LIST

    page = act(lambda one: one.request(DISCOUNT_LIST, {"limit": limit}))
    if as_json:
        print_json(page)
        return
    print_table(COLUMNS, [(d.code, d.name, _off(d), d.times_redeemed, "yes" if d.active else "no")
                          for d in page.discounts], empty="no discount codes")


@discounts_app.command("show")
def show(code: str, as_json: bool = JsonOption) -> None:
    """One code."""
    from shared.contracts.commerce.discounts import DISCOUNT_GET

    show_discount(act(lambda one: one.request(DISCOUNT_GET, {"code": code})), as_json)


@discounts_app.command("update")
def update(
    code: str,
    name: str = typer.Option(None, "--name"),
    active: bool = typer.Option(None, "--active/--inactive", help="Switch the code on or off."),
    ends_at: datetime = typer.Option(None, "--until", help="Valid until (ISO 8601)."),
    max_redemptions: int = typer.Option(None, "--max-redemptions", min=1),
    as_json: bool = JsonOption,
) -> None:
    """Rename, switch off, end or cap a code."""
    from shared.contracts.commerce.discounts import DISCOUNT_UPDATE

    changes = {"name": name, "active": active, "ends_at": ends_at and ends_at.isoformat(),
               "max_redemptions": max_redemptions}
    body = {"code": code, **{k: v for k, v in changes.items() if v is not None}}
    show_discount(act(lambda one: one.request(DISCOUNT_UPDATE, body)), as_json)
