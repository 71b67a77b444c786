"""`one agents external add|list|show|refresh|credentials|remove`: the org's external A2A agents from a terminal.

An external agent is another platform's A2A agent, known by its card (`add <card url>` fetches and validates it);
an agent of the org delegates to it once its config's `delegates_to` names the external agent's slug. Its
credential is given with `--api-key` (or `ONE_EXTERNAL_API_KEY`, kept out of the shell's history) and never
printed back: `key` shows its last four characters. These messages travel over the bus (no gateway route).
"""

from typing import Any
from uuid import UUID

import typer

from shared.tools.cli_output import Column, act, print_json, print_record, print_table

external_app = typer.Typer(help="External A2A agents: add, list, show, refresh, credentials, remove.",
                           no_args_is_help=True)

JsonOption = typer.Option(False, "--json", help="The reply as JSON (the contract's model).")
KeyOption = typer.Option(None, "--api-key", envvar="ONE_EXTERNAL_API_KEY", show_envvar=True,
                         help="The credential the remote agent demands (API key or bearer token).")
COLUMNS = [Column("slug", "id"), Column("platform"), Column("stream"), Column("key"), Column("status"),
           Column("name", "text")]


def show_external(agent: Any, as_json: bool) -> None:
    if as_json:
        print_json(agent)
        return
    print_record({
        "slug": agent.slug, "id": str(agent.id), "name": agent.name, "platform": agent.provider or "-",
        "status": agent.status, "card_url": agent.card_url, "description": agent.description,
        "version": agent.version, "streaming": "yes" if agent.streaming else "no",
        "interfaces": ", ".join(f"{i.protocol_binding} {i.url}" for i in agent.interfaces),
        "skills": ", ".join(s.name or s.id for s in agent.skills), "security": ", ".join(agent.security_schemes),
        "credentials": agent.credentials_hint or "none", "timeout": f"{agent.timeout:g} s",
        "messages": f"{agent.messages_sent} sent, {agent.messages_received} received",
        "resolved_at": agent.resolved_at.isoformat(timespec="seconds"),
    })


def _request(spec_name: str, payload: dict[str, Any]) -> Any:
    from shared.contracts.agents import external

    spec = getattr(external, spec_name)
    return act(lambda one: one.request(spec, {k: v for k, v in payload.items() if v is not None}))


@external_app.command("add")
def add(
    card_url: str = typer.Argument(..., help="The agent's base URL, or its card's URL (…/agent-card.json)."),
    slug: str = typer.Option(None, "--slug", help="Its name in this org (default: from the card's name)."),
    api_key: str = KeyOption,
    timeout: float = typer.Option(None, "--timeout", help="Seconds a delegated task may take (default 120)."),
    as_json: bool = JsonOption,
) -> None:
    """Fetch the agent's card, check it, and keep it (with the credential) as an external agent of the org."""
    show_external(_request("EXTERNAL_ADD", {"card_url": card_url, "slug": slug, "api_key": api_key,
                                            "timeout": timeout}), as_json)


@external_app.command("list")
def list_external(
    archived: bool = typer.Option(False, "--archived", help="Removed ones too."),
    cursor: UUID = typer.Option(None, help="The next page, as the last page printed it."),
    limit: int = typer.Option(50, min=1, max=200),
    as_json: bool = JsonOption,
) -> None:
    """The org's external agents: slug, platform, whether they stream, the key's last characters, status."""
    page = _request("EXTERNAL_LIST", {"include_archived": archived or None, "cursor": cursor and str(cursor),
                                      "limit": limit})
    if as_json:
        print_json(page)
        return
    print_table(COLUMNS, [(a.slug, a.provider or "-", "yes" if a.streaming else "no", a.credentials_hint or "-",
                           a.status, a.name) for a in page.external_agents], empty="no external agents")
    if page.next_cursor:
        print(f"next page: --cursor {page.next_cursor}")


@external_app.command("show")
def show(slug: str, as_json: bool = JsonOption) -> None:
    """One external agent: its card (interfaces, skills, security), credential hint and message counts."""
    show_external(_request("EXTERNAL_GET", {"slug": slug}), as_json)


@external_app.command("refresh")
def refresh(slug: str, as_json: bool = JsonOption) -> None:
    """Fetch the agent's card again (its skills, interfaces or streaming may have changed)."""
    show_external(_request("EXTERNAL_REFRESH", {"slug": slug}), as_json)


@external_app.command("credentials")
def credentials(
    slug: str,
    api_key: str = KeyOption,
    clear: bool = typer.Option(False, "--clear", help="Remove the stored credential."),
    as_json: bool = JsonOption,
) -> None:
    """Replace the credential sent to the remote agent (`--clear` removes it)."""
    if not api_key and not clear:
        from shared.tools.cli_output import fail

        fail("give the new credential with --api-key (or ONE_EXTERNAL_API_KEY), or --clear to remove it")
    show_external(_request("EXTERNAL_CREDENTIALS", {"slug": slug, "api_key": None if clear else api_key}), as_json)


@external_app.command("remove")
def remove(slug: str, as_json: bool = JsonOption) -> None:
    """Archive the external agent: no agent delegates to it any more (its thing and history stay)."""
    agent = _request("EXTERNAL_ARCHIVE", {"slug": slug})
    if as_json:
        print_json(agent)
    else:
        print(f"removed {agent.slug} ({agent.name})")
