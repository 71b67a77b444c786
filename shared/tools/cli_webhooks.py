"""`one checkout webhook set|show|deliveries`: where the org's ACP order events go, and how their deliveries went.

`set URL` registers the agent platform's receiver (`--secret` to give the shared signing secret; without
it one is generated and printed once). Deliveries are signed `Merchant-Signature: t=<unix>,v1=<hex>`,
HMAC-SHA256 over `<t>.<raw body>` (services/commerce/README.md, "Webhooks").
"""

from typing import Any

import typer

from shared.tools.cli_output import Column, act, print_json, print_record, print_table

webhook_app = typer.Typer(help="Webhooks to the agent platform: ACP order events, signed.", no_args_is_help=True)
JsonOption = typer.Option(False, "--json", help="The reply as JSON (the contract's model).")


def _show(endpoint: Any, as_json: bool) -> None:
    if as_json:
        print_json(endpoint)
        return
    print_record({"url": endpoint.url, "secret": endpoint.secret or f"...{endpoint.secret_hint}",
                  "updated": endpoint.updated_at.strftime("%Y-%m-%d %H:%M")})
    if endpoint.secret:
        print("keep this secret: it is not shown again")


@webhook_app.command("set")
def set_webhook(url: str, secret: str = typer.Option(None, "--secret", help="The shared signing secret (16+ chars)."),
                as_json: bool = JsonOption) -> None:
    """Send the org's order events to URL (replaces the current endpoint and its secret)."""
    from shared.contracts.commerce.webhooks import WEBHOOK_SET

    _show(act(lambda one: one.request(WEBHOOK_SET, {"url": url, **({"secret": secret} if secret else {})})), as_json)


@webhook_app.command("show")
def show_webhook(as_json: bool = JsonOption) -> None:
    """The org's webhook endpoint (the secret's last four characters only)."""
    from shared.contracts.commerce.webhooks import WEBHOOK_GET

    _show(act(lambda one: one.request(WEBHOOK_GET, {})), as_json)


@webhook_app.command("deliveries")
def list_deliveries(state: str = typer.Option(None, "--state", help="pending, delivered or dead."),
                    limit: int = typer.Option(20, min=1, max=200), as_json: bool = JsonOption) -> None:
    """Recent deliveries, newest first: event, order, state, attempts, the last answer."""
    from shared.contracts.commerce.webhooks import WEBHOOK_DELIVERIES

    page = act(lambda one: one.request(WEBHOOK_DELIVERIES, {"limit": limit, **({"state": state} if state else {})}))
    if as_json:
        print_json(page)
        return
    rows = [(d.id, d.event_type, d.order_id or "", d.state, len(d.attempts),
             (d.attempts[-1].error or d.attempts[-1].status) if d.attempts else "") for d in page.items]
    print_table([Column("id", "id"), Column("event"), Column("order", "id"), Column("state"), Column("tries"),
                 Column("last")], rows, empty="no deliveries")
