"""`one webhooks sources create|list|show|delete|rotate`: the org's signed inbound webhook sources.

A source lets a third party (an identity or payment provider) post signed webhooks to the gateway's
`/v1/webhooks/in/<id>`. `create NAME` registers one (`--scheme standard`: Standard Webhooks, the default;
`--scheme hmac --signature-header H`: one HMAC-SHA256 header) and prints its secret once; `--map TYPE=EVENT`
turns a provider event type into an ontology event, `--invite TYPE=EMAIL_PATH[:ROLE]` into an invitation
(docs/webhooks.md). Outbound ACP webhooks are `one checkout webhook` (shared/tools/cli_webhooks.py).
"""

from typing import Any

import typer

from shared.tools.cli_output import EXIT_USAGE, Column, act, fail, json_object, print_json, print_record, print_table

webhooks_app = typer.Typer(help="Signed inbound webhooks from third parties.", no_args_is_help=True)
sources_app = typer.Typer(help="The org's webhook sources: who may sign, how, and what their events become.",
                          no_args_is_help=True)
webhooks_app.add_typer(sources_app, name="sources")
JsonOption = typer.Option(False, "--json", help="The reply as JSON (the contract's model).")
COLUMNS = [Column("id", "id"), Column("name", "text"), Column("scheme"), Column("secret"), Column("mapped", "text")]


def _mappings(maps: list[str], invites: list[str], given: str | None) -> dict[str, Any]:
    mappings: dict[str, Any] = json_object(given, "--mappings")
    for item in maps:
        kind, sep, event = item.partition("=")
        if not sep or not kind or not event:
            fail(f"--map {item!r} is not TYPE=EVENT", "e.g. --map payment.succeeded=payment_processed", EXIT_USAGE)
        mappings[kind] = {"action": "event", "event_type": event}
    for item in invites:
        kind, sep, rest = item.partition("=")
        path, _, role = rest.partition(":")
        if not sep or not kind or not path:
            fail(f"--invite {item!r} is not TYPE=EMAIL_PATH[:ROLE]", "e.g. --invite user.created=data.email", EXIT_USAGE)
        mappings[kind] = {"action": "invite", "email_path": path, **({"role": role} if role else {})}
    return mappings


def _show(source: Any, secret: str | None, as_json: bool) -> None:
    if as_json:
        print_json({"source": source, "secret": secret} if secret else source)
        return
    print_record({"id": str(source.id), "name": source.name, "scheme": source.scheme,
                  "receiver": source.receiver_path, "secret": secret or f"...{source.secret_hint}",
                  "tolerance": f"{source.tolerance_seconds}s", "rate": f"{source.max_per_minute}/min",
                  "mappings": {k: m.model_dump(exclude_defaults=True) for k, m in source.mappings.items()},
                  **({"previous secret until": source.previous_secret_valid_until.isoformat()}
                     if source.previous_secret_valid_until else {})})
    if secret:
        print("keep this secret: give it to the provider; it is not shown again")


@sources_app.command("create")
def create(
    name: str,
    scheme: str = typer.Option("standard", "--scheme", help="`standard` (Standard Webhooks) or `hmac`."),
    secret: str = typer.Option(None, "--secret", help="The provider's secret (standard: whsec_...); else generated."),
    signature_header: str = typer.Option(None, "--signature-header", help="hmac: the header with the signature."),
    encoding: str = typer.Option("hex", "--encoding", help="hmac: `hex` or `base64` digest."),
    prefix: str = typer.Option("", "--prefix", help="hmac: what precedes the digest, e.g. sha256=."),
    timestamp_header: str = typer.Option(None, "--timestamp-header", help="hmac: a signed unix-timestamp header."),
    id_header: str = typer.Option(None, "--id-header", help="hmac: the provider's delivery id header."),
    type_path: str = typer.Option("type", "--type-path", help="Where the body names its event type."),
    type_header: str = typer.Option(None, "--type-header", help="Or the header naming it."),
    tolerance: int = typer.Option(300, "--tolerance", min=1, help="Seconds a signed timestamp may be off."),
    per_minute: int = typer.Option(600, "--max-per-minute", min=1, help="Webhooks accepted per minute."),
    maps: list[str] = typer.Option([], "--map", help="TYPE=EVENT: a provider type to an ontology event (repeatable)."),
    invites: list[str] = typer.Option([], "--invite", help="TYPE=EMAIL_PATH[:ROLE]: invite the person (repeatable)."),
    mappings: str = typer.Option(None, "--mappings", help="All mappings as JSON (or @file.json)."),
    as_json: bool = JsonOption,
) -> None:
    """Register a webhook source; its secret is printed this once."""
    from shared.contracts.tenancy.webhooks import WEBHOOK_SOURCE_CREATE

    optional = {"secret": secret, "signature_header": signature_header, "timestamp_header": timestamp_header,
                "id_header": id_header, "type_header": type_header}
    body = {"name": name, "scheme": scheme, "signature_encoding": encoding, "signature_prefix": prefix,
            "type_path": type_path, "tolerance_seconds": tolerance, "max_per_minute": per_minute,
            "mappings": _mappings(maps, invites, mappings), **{k: v for k, v in optional.items() if v is not None}}
    issued = act(lambda one: one.request(WEBHOOK_SOURCE_CREATE, body))
    _show(issued.source, issued.secret, as_json)


@sources_app.command("list")
def list_sources(limit: int = typer.Option(100, min=1, max=1000), as_json: bool = JsonOption) -> None:
    """The org's sources: id, name, scheme, the secret's last four characters, mapped types."""
    from shared.contracts.tenancy.webhooks import WEBHOOK_SOURCE_LIST

    reply = act(lambda one: one.request(WEBHOOK_SOURCE_LIST, {"limit": limit}))
    if as_json:
        print_json(reply)
        return
    print_table(COLUMNS, [(str(s.id), s.name, s.scheme, f"...{s.secret_hint}", ", ".join(sorted(s.mappings)))
                          for s in reply.sources], empty="no webhook sources")


@sources_app.command("show")
def show(source_id: str, as_json: bool = JsonOption) -> None:
    """One source (never its secret)."""
    from shared.contracts.tenancy.webhooks import WEBHOOK_SOURCE_GET

    _show(act(lambda one: one.request(WEBHOOK_SOURCE_GET, {"source_id": source_id})), None, as_json)


@sources_app.command("delete")
def delete(source_id: str, as_json: bool = JsonOption) -> None:
    """Delete a source: webhooks sent to it are not found from now on."""
    from shared.contracts.tenancy.webhooks import WEBHOOK_SOURCE_DELETE

    deleted = act(lambda one: one.request(WEBHOOK_SOURCE_DELETE, {"source_id": source_id}))
    if as_json:
        print_json(deleted)
    else:
        print(f"deleted {deleted.source_id}")


@sources_app.command("rotate")
def rotate(
    source_id: str,
    secret: str = typer.Option(None, "--secret", help="The new secret; else generated."),
    grace: int = typer.Option(3600, "--grace", min=0, help="Seconds the previous secret still verifies."),
    as_json: bool = JsonOption,
) -> None:
    """A new secret (printed this once); the previous one keeps verifying for --grace seconds."""
    from shared.contracts.tenancy.webhooks import WEBHOOK_SOURCE_ROTATE

    body = {"source_id": source_id, "grace_seconds": grace, **({"secret": secret} if secret else {})}
    issued = act(lambda one: one.request(WEBHOOK_SOURCE_ROTATE, body))
    _show(issued.source, issued.secret, as_json)
