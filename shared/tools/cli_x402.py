"""`one x402 fund|balance`: test dollars on the local chain (x402's built-in facilitator), through the SDK.

The local chain is the in-process EVM commerce runs for `make run` and the tests; `fund` mints its
EIP-3009 token (6 decimals) to a payer so it can pay x402-priced routes. Amounts are given and shown in
tokens (`1.5` = 1500000 atomic units); `--json` prints the contract's reply (atomic units).
"""

import re
from decimal import Decimal, InvalidOperation
from typing import Any

import typer

from shared.tools.cli_output import EXIT_USAGE, act, fail, print_json, print_record

x402_app = typer.Typer(help="x402 payments: fund and read balances on the local chain.", no_args_is_help=True)

JsonOption = typer.Option(False, "--json", help="The reply as JSON (the contract's model).")
DECIMALS = 6
"""The local token's decimals (like USDC)."""


def atomic(amount: str) -> int:
    """Tokens as atomic units: `1.5` -> 1500000; more than 6 decimals, or not a positive number, is refused."""
    try:
        value = Decimal(amount).scaleb(DECIMALS)
    except InvalidOperation:
        fail(f"{amount!r} is not an amount", "give tokens as a number, e.g. 10 or 0.25", EXIT_USAGE)
    if not value.is_finite() or value <= 0 or value != value.to_integral_value():
        fail(f"{amount!r} is not a positive amount with at most {DECIMALS} decimals", "e.g. 10 or 0.25", EXIT_USAGE)
    return int(value)


def checked_address(address: str) -> str:
    if not re.fullmatch(r"0x[0-9a-fA-F]{40}", address):
        fail(f"{address!r} is not an address", "give 0x and 40 hex digits", EXIT_USAGE)
    return address


def tokens(units: int) -> str:
    return f"{Decimal(units).scaleb(-DECIMALS):f}"


def show_balance(reply: Any, as_json: bool) -> None:
    if as_json:
        print_json(reply)
        return
    print_record({"address": reply.address, "balance": f"{tokens(reply.balance)} ({reply.balance} units)",
                  "network": reply.network, "asset": reply.asset,
                  **({"transaction": reply.tx_hash} if reply.tx_hash else {})})


@x402_app.command("fund")
def fund(address: str = typer.Argument(..., help="The payer's address (0x + 40 hex)."),
         amount: str = typer.Argument(..., help="Tokens to mint, e.g. 10 or 0.25."),
         as_json: bool = JsonOption) -> None:
    """Mint test tokens to an address on the local chain (nothing of value: there is no such chain elsewhere)."""
    from shared.contracts.commerce.facilitator import CHAIN_FUND

    body = {"address": checked_address(address), "amount": atomic(amount)}
    show_balance(act(lambda one: one.request(CHAIN_FUND, body)), as_json)


@x402_app.command("balance")
def balance(address: str = typer.Argument(..., help="The address (0x + 40 hex)."), as_json: bool = JsonOption) -> None:
    """An address's token balance on the local chain."""
    from shared.contracts.commerce.facilitator import CHAIN_BALANCE

    show_balance(act(lambda one: one.request(CHAIN_BALANCE, {"address": checked_address(address)})), as_json)


wallet_app = typer.Typer(help="The org's wallet: the account its agents pay x402 prices from.", no_args_is_help=True)
budget_app = typer.Typer(help="What an agent may pay from the org's wallet, per call and per 24 hours.",
                         no_args_is_help=True)
x402_app.add_typer(wallet_app, name="wallet")
x402_app.add_typer(budget_app, name="budget")


def show_wallet(reply: Any, as_json: bool) -> None:
    if as_json:
        print_json(reply)
        return
    print_record({"address": reply.address, "created": "now" if reply.created else
                  reply.created_at.isoformat(timespec="seconds")})


@wallet_app.command("create")
def wallet_create(as_json: bool = JsonOption) -> None:
    """Create the org's wallet (its key stays sealed in commerce); shows the existing one if there is one."""
    from shared.contracts.commerce.wallet import WALLET_CREATE

    show_wallet(act(lambda one: one.request(WALLET_CREATE, {})), as_json)


@wallet_app.command("show")
def wallet_show(as_json: bool = JsonOption) -> None:
    """The org's wallet address (fund it with `one x402 fund <address> <amount>` on the local chain)."""
    from shared.contracts.commerce.wallet import WALLET_GET

    show_wallet(act(lambda one: one.request(WALLET_GET, {})), as_json)


def budget_units(amount: str) -> int:
    """Tokens as atomic units, like `fund`; `0` (no payments) is a budget too."""
    try:
        if Decimal(amount) == 0:
            return 0
    except InvalidOperation:
        pass
    return atomic(amount)


def show_budget(slug: str, reply: Any, as_json: bool) -> None:
    if as_json:
        print_json(reply)
        return
    print_record({"agent": slug, "per_call": f"{tokens(reply.per_call)} ({reply.per_call} units)",
                  "per_day": f"{tokens(reply.per_day)} ({reply.per_day} units)",
                  "spent_last_24h": f"{tokens(reply.spent_last_day)} ({reply.spent_last_day} units)",
                  "asset": reply.asset or "any"})


@budget_app.command("set")
def budget_set(slug: str = typer.Argument(..., help="The agent's slug."),
               per_call: str = typer.Option(..., "--per-call", help="Most one payment may cost, in tokens (e.g. 0.01)."),
               per_day: str = typer.Option(..., "--per-day", help="Most it may pay in any 24 hours, in tokens."),
               asset: str = typer.Option(None, "--asset", help="Only this token (contract address); default: any."),
               as_json: bool = JsonOption) -> None:
    """Let an agent pay x402 prices from the org's wallet, up to these amounts (0 stops it paying)."""
    from shared.contracts.commerce.wallet import BUDGET_SET

    body = {"per_call": budget_units(per_call), "per_day": budget_units(per_day), "asset": asset}

    async def work(one: Any) -> Any:
        agent = await one.agents.get(slug)
        return await one.request(BUDGET_SET, {"agent_id": str(agent.id), **body})

    show_budget(slug, act(work), as_json)


@budget_app.command("show")
def budget_show(slug: str = typer.Argument(..., help="The agent's slug."), as_json: bool = JsonOption) -> None:
    """An agent's budget and what it paid in the last 24 hours."""
    from shared.contracts.commerce.wallet import BUDGET_GET

    async def work(one: Any) -> Any:
        agent = await one.agents.get(slug)
        return await one.request(BUDGET_GET, {"agent_id": str(agent.id)})

    show_budget(slug, act(work), as_json)


price_app = typer.Typer(help="What the org charges per request for a resource sold over the gateway's `/x402/{org}/...`"
                        " (paid with x402, no API key).", no_args_is_help=True)
x402_app.add_typer(price_app, name="price")
ResourceArgument = typer.Argument(..., help="What is sold under /x402/<org>/: a route of the allow-list (`one x402 "
                                  "price routes`), e.g. `v1/things/{id}` (every thing), or one path of it "
                                  "(`v1/things/<id>`, `agents/<slug>/chat`, `knowledge/search`).")


def show_prices(prices: list[Any]) -> None:
    from shared.tools.cli_output import print_table

    print_table(["method", "resource", "amount", "units", "pay_to", "network", "asset", "mime_type", "url"],
                [[p.method, p.resource, tokens(p.amount), p.amount, p.pay_to, p.network, p.asset, p.mime_type,
                  f"/x402/{p.org_slug}/{p.resource}"] for p in prices], empty="no prices")


@price_app.command("set")
def price_set(resource: str = ResourceArgument,
              amount: str = typer.Argument(..., help="Tokens per request, e.g. 0.01 (6 decimals; see --units)."),
              pay_to: str = typer.Option(..., "--pay-to", help="The address paid (0x + 40 hex)."),
              units: bool = typer.Option(False, "--units", help="AMOUNT is in the asset's atomic units."),
              network: str = typer.Option(None, "--network", help="CAIP-2 chain id; default: the facilitator's."),
              asset: str = typer.Option(None, "--asset", help="Token contract; default: the facilitator's."),
              asset_name: str = typer.Option(None, "--asset-name", help="The token's EIP-712 name; default: ditto."),
              asset_version: str = typer.Option(None, "--asset-version", help="Its EIP-712 version; default: ditto."),
              timeout: int = typer.Option(300, "--timeout", help="Seconds a signed payment stays valid."),
              description: str = typer.Option("", "--description", help="What the payer buys (shown in the 402)."),
              method: str = typer.Option(None, "--method", help="GET or POST; default (and the only one allowed): "
                                         "the route's."),
              mime_type: str = typer.Option("application/json", "--mime-type", help="What the resource answers."),
              as_json: bool = JsonOption) -> None:
    """Price a resource (replacing its price); the gateway sells at the new price within seconds."""
    from shared.contracts.commerce.x402 import X402_PRICE_SET

    if units and not amount.isdigit():
        fail(f"{amount!r} is not a whole number of units", "e.g. 10000", EXIT_USAGE)
    body = {"resource": resource, "amount": int(amount) if units else atomic(amount), "pay_to": pay_to,
            "network": network, "asset": asset, "asset_name": asset_name, "asset_version": asset_version,
            "max_timeout_seconds": timeout, "description": description, "method": method and method.upper(),
            "mime_type": mime_type}
    reply = act(lambda one: one.request(X402_PRICE_SET, body))
    print_json(reply) if as_json else show_prices([reply])


@price_app.command("routes")
def price_routes() -> None:
    """The routes an org may price (the allow-list): reads only, and a paid chat."""
    from shared.contracts.commerce.x402 import PRICEABLE_ROUTES
    from shared.tools.cli_output import print_table

    print_table(["method", "route", "serves"], [[r.method, r.template, r.serves] for r in PRICEABLE_ROUTES])


@price_app.command("list")
def price_list(as_json: bool = JsonOption) -> None:
    """The org's prices, with the URL each is sold at."""
    from shared.contracts.commerce.x402 import X402_PRICE_LIST

    reply = act(lambda one: one.request(X402_PRICE_LIST, {}))
    print_json(reply) if as_json else show_prices(reply.prices)


@price_app.command("delete")
def price_delete(resource: str = ResourceArgument, as_json: bool = JsonOption) -> None:
    """Stop selling a resource (within seconds at every gateway replica)."""
    from shared.contracts.commerce.x402 import X402_PRICE_DELETE

    reply = act(lambda one: one.request(X402_PRICE_DELETE, {"resource": resource}))
    print_json(reply) if as_json else print_record({"resource": reply.resource, "deleted": reply.deleted})
