"""`one ap2 ...`: AP2 mandates from the command line, through the SDK as a verified key.

- `trust add ISSUER JWKS` puts a credential provider's keys on the org's trust list (JWKS: a file, `-`
  for stdin, or an `https://` URL such as another org's `/v1/ap2/{org id}/jwks.json`); `trust list`.
- `mandates grant AGENT_ID CONSTRAINTS` grants one of the org's agents an open payment (or `--kind
  checkout`) mandate (constraints as AP2 JSON: a file, `-`, or inline `[...]`); `mandates revoke ID`;
  `mandates list` (granted or accepted, newest first); `mandates held --agent ID`: an agent's active open
  mandates with what remains of each (uses and budget left, the most a purchase may spend now).
- `receipts list`; `receipts verify ID` checks a receipt's ES256 signature with the merchant's published
  keys (the org's own unless `--jwks` names another set) and prints its claims.
"""

import json
from pathlib import Path
from typing import Any

import typer

from shared.tools.cli_output import EXIT_FAILED, EXIT_USAGE, act, fail, print_json, print_record, print_table

ap2_app = typer.Typer(help="AP2 mandates: trusted issuers, mandates granted to agents, receipts.",
                      no_args_is_help=True)
trust_app = typer.Typer(help="The credential providers whose mandates this org accepts.", no_args_is_help=True)
mandates_app = typer.Typer(help="Mandates granted to the org's agents, or accepted as a merchant.",
                           no_args_is_help=True)
receipts_app = typer.Typer(help="Receipts the org signed for mandates it accepted.", no_args_is_help=True)
ap2_app.add_typer(trust_app, name="trust")
ap2_app.add_typer(mandates_app, name="mandates")
ap2_app.add_typer(receipts_app, name="receipts")

JsonOption = typer.Option(False, "--json", help="The reply as JSON (the contract's model).")


def read_json(source: str, what: str) -> Any:
    """JSON from inline text (`{...}` / `[...]`), `-` (stdin), a file, or an http(s) URL."""
    text = source
    if source.startswith(("http://", "https://")):
        import httpx

        try:
            response = httpx.get(source, timeout=10.0, follow_redirects=False)
            response.raise_for_status()
        except httpx.HTTPError as error:
            fail(f"cannot read the {what} at {source}: {error}", "check the URL", EXIT_FAILED)
        text = response.text
    elif source == "-":
        import sys

        text = sys.stdin.read()
    elif not source.lstrip().startswith(("{", "[")):
        path = Path(source)
        if not path.is_file():
            fail(f"no file {source}", f"give the {what} as a file, `-` (stdin), a URL or inline JSON", EXIT_USAGE)
        text = path.read_text()
    try:
        return json.loads(text)
    except ValueError:
        fail(f"the {what} is not JSON", "", EXIT_USAGE)


@trust_app.command("add")
def trust_add(issuer: str = typer.Argument(..., help="The credential provider's name or URL."),
              jwks: str = typer.Argument(..., help="Its JWKS: a file, `-`, a URL, or inline JSON."),
              as_json: bool = JsonOption) -> None:
    """Accept mandates signed by this credential provider's keys from now on."""
    from shared.contracts.commerce.ap2 import AP2_TRUST_ADD

    body = {"issuer": issuer, "jwks": read_json(jwks, "JWKS")}
    reply = act(lambda one: one.request(AP2_TRUST_ADD, body))
    if as_json:
        print_json(reply)
        return
    print_record({"id": reply.id, "issuer": reply.issuer, "kids": ", ".join(reply.kids)})


@trust_app.command("list")
def trust_list(as_json: bool = JsonOption) -> None:
    """The org's trusted credential providers."""
    from shared.contracts.commerce.ap2 import AP2_TRUST_LIST

    reply = act(lambda one: one.request(AP2_TRUST_LIST, {}))
    if as_json:
        print_json(reply)
        return
    print_table(["id", "issuer", "kids", "created_at"], [(i.id, i.issuer, ", ".join(i.kids), i.created_at)
                                                         for i in reply.items], empty="no trusted issuers")


@mandates_app.command("grant")
def grant(agent_id: str = typer.Argument(..., help="The org's agent that will hold the mandate."),
          constraints: str = typer.Argument(..., help="AP2 constraints: a JSON list (file, `-`, or inline)."),
          kind: str = typer.Option("payment", "--kind", help="payment or checkout."),
          ttl: int = typer.Option(86400 * 30, "--ttl", help="Seconds the mandate is valid."),
          as_json: bool = JsonOption) -> None:
    """Grant an agent an open mandate, signed as the org's credential provider."""
    from shared.contracts.commerce.ap2 import AP2_GRANT

    rules = read_json(constraints, "constraints")
    if not isinstance(rules, list):
        fail("the constraints are a JSON list", 'e.g. \'[{"type": "payment.amount_range", "currency": "USD", '
             '"max": 5000}]\'', EXIT_USAGE)
    body = {"agent_id": agent_id, "constraints": rules, "kind": kind, "ttl_seconds": ttl}
    reply = act(lambda one: one.request(AP2_GRANT, body))
    if as_json:
        print_json(reply)
        return
    print_record({"id": reply.id, "agent": reply.agent_id, "issuer": reply.issuer, "expires": reply.expires_at,
                  "credential hash": reply.credential_hash})


@mandates_app.command("revoke")
def revoke(mandate_id: str = typer.Argument(..., help="A mandate the org granted."),
           as_json: bool = JsonOption) -> None:
    """Revoke a granted mandate: its agent can close it no more."""
    from shared.contracts.commerce.ap2 import AP2_REVOKE

    reply = act(lambda one: one.request(AP2_REVOKE, {"id": mandate_id}))
    if as_json:
        print_json(reply)
        return
    print_record({"id": reply.id, "status": reply.status})


@mandates_app.command("list")
def list_mandates(direction: str = typer.Option(None, "--direction", help="granted or accepted."),
                  agent: str = typer.Option(None, "--agent", help="Only this agent's."),
                  limit: int = typer.Option(50, "--limit", min=1, max=500), as_json: bool = JsonOption) -> None:
    """The org's mandates, newest first."""
    from shared.contracts.commerce.ap2 import AP2_MANDATE_LIST

    body = {"direction": direction, "agent_id": agent, "limit": limit}
    reply = act(lambda one: one.request(AP2_MANDATE_LIST, body))
    if as_json:
        print_json(reply)
        return
    print_table(["id", "kind", "type", "direction", "status", "v", "agent", "created_at"],
                [(m.id, m.kind, m.mandate_type, m.direction, m.status, m.version, m.agent_id, m.created_at)
                 for m in reply.items], empty="no mandates")


def _money(amounts: dict[str, Any] | None) -> str:
    return ", ".join(f"{amount} {currency}" for currency, amount in sorted((amounts or {}).items()))


@mandates_app.command("held")
def held(agent: str = typer.Option(..., "--agent", help="The org's agent holding the mandates."),
         as_json: bool = JsonOption) -> None:
    """An agent's active open mandates and what remains of each: uses, budget, the most it may spend now."""
    from shared.contracts.commerce.ap2 import AP2_HELD

    reply = act(lambda one: one.request(AP2_HELD, {"agent_id": agent}))
    if as_json:
        print_json(reply)
        return
    print_table(["id", "kind", "usable", "uses left", "budget left", "max now", "expires_at"],
                [(m.id, m.kind, "yes" if m.remaining.get("usable") else f"no ({m.remaining.get('why_not')})",
                  "unlimited" if m.remaining.get("uses_left") is None else m.remaining["uses_left"],
                  (budget := m.remaining.get("budget")) and f"{budget['left']} {budget['currency']}",
                  _money(m.remaining.get("max_amount_now")), m.expires_at) for m in reply.items],
                empty="no mandates held")


@receipts_app.command("list")
def list_receipts(limit: int = typer.Option(50, "--limit", min=1, max=500), as_json: bool = JsonOption) -> None:
    """The receipts the org signed, newest first."""
    from shared.contracts.commerce.ap2 import AP2_RECEIPT_LIST

    reply = act(lambda one: one.request(AP2_RECEIPT_LIST, {"limit": limit}))
    if as_json:
        print_json(reply)
        return
    print_table(["id", "kind", "checkout", "status", "charge", "created_at"],
                [(r.id, r.kind, r.checkout_id, r.receipt.get("status"), r.charge_id, r.created_at)
                 for r in reply.items], empty="no receipts")


def verified_claims(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """The receipt's claims if a key of `jwks` (by `kid`) signed it with ES256; ValueError otherwise."""
    from jwcrypto.jwk import JWK
    from jwcrypto.jws import JWS

    jws = JWS()
    try:
        jws.deserialize(token)
        kid = jws.jose_header.get("kid")
        keys = [key for key in jwks.get("keys", []) if key.get("kid") == kid]
        if not keys or jws.jose_header.get("alg") != "ES256":
            raise ValueError(f"no ES256 key {kid!r} in the key set")
        jws.verify(JWK(**{k: keys[0][k] for k in ("kty", "crv", "x", "y")}), alg="ES256")
    except ValueError:
        raise
    except Exception as error:  # jwcrypto's own errors for a bad signature or token
        raise ValueError(f"the signature does not verify ({type(error).__name__})") from None
    return json.loads(jws.payload)


@receipts_app.command("verify")
def verify(receipt_id: str = typer.Argument(..., help="The receipt's id."),
           jwks: str = typer.Option(None, "--jwks", help="The merchant's JWKS (file, `-`, URL); unset: the org's."),
           as_json: bool = JsonOption) -> None:
    """Check a receipt's signature with the merchant's published keys; exit 1 if it does not verify."""
    from shared.contracts.commerce.ap2 import AP2_JWKS, AP2_RECEIPT_GET

    async def fetch(one: Any) -> tuple[Any, Any]:
        receipt = await one.request(AP2_RECEIPT_GET, {"id": receipt_id})
        keys = None if jwks else await one.request(AP2_JWKS, {})
        return receipt, keys

    receipt, own = act(fetch)
    key_set = read_json(jwks, "JWKS") if jwks else own.model_dump()
    try:
        claims = verified_claims(receipt.receipt_jwt, key_set)
    except ValueError as error:
        fail(f"receipt {receipt_id} does not verify: {error}", "", EXIT_FAILED)
    if as_json:
        print_json({"verified": True, "claims": claims})
        return
    print_record({"verified": "yes", **{name: claims[name] for name in sorted(claims)}})
