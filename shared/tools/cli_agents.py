"""`one agents create|list|show|deploy|chat`: the org's agents from a terminal, through the SDK (`one.agents`).

Commands act as a verified key (`One.connect()`: the running stack's bus, or `ONE_URL` over the gateway).
`chat` streams the answer as it arrives (over the bus the run's steps, over HTTP the chat's AG-UI stream),
shows each tool the agent calls, and ends with the model that answered and the run's id; a run that
fails is one error line with its code and an exit code like any other error.
"""

import os
import sys
from typing import Any
from uuid import UUID

import typer

from shared.tools.cli_agents_external import external_app
from shared.tools.cli_output import Column, act, fail, json_object, print_json, print_record, print_table

agents_app = typer.Typer(help="Agents: create, list, show, deploy, chat, card.", no_args_is_help=True)
agents_app.add_typer(external_app, name="external")

JsonOption = typer.Option(False, "--json", help="The reply as JSON (the contract's model).")
AGENT_COLUMNS = [Column("slug", "id"), Column("type"), Column("status"), Column("dev"), Column("prod"),
                 Column("model", "text")]
RESULT_CHARS = 120
"""A tool result is shown up to this many characters (`--json` has it whole)."""


def show_agent(agent: Any, as_json: bool) -> None:
    if as_json:
        print_json(agent)
        return
    config = agent.production or agent.development
    print_record({
        "slug": agent.slug, "id": str(agent.id), "name": agent.name, "type": agent.type, "status": agent.status,
        "description": agent.description,
        "development": f"v{agent.development.version} {agent.development.model}",
        "production": f"v{agent.production.version} {agent.production.model}" if agent.production else "not deployed",
        "tools": ", ".join(config.tools), "temperature": str(config.temperature),
        "max_iterations": str(config.max_iterations), "system_prompt": config.system_prompt,
        "updated_at": agent.updated_at.isoformat(timespec="seconds"),
    })


@agents_app.command("create")
def create(
    slug: str = typer.Argument(..., help="The agent's name in URLs and commands (a-z, 0-9, -)."),
    name: str = typer.Option(None, "--name", help="Its display name (default: the slug)."),
    type_: str = typer.Option(None, "--type", help="ai_clone (default) or a business agent type (sales_agent, ...)."),
    description: str = typer.Option(None, "--description"),
    model: str = typer.Option(None, "--model", help="<provider>:<model>, e.g. openai:gpt-4o-mini (default: the "
                                                    "service's offline model)."),
    system_prompt: str = typer.Option(None, "--system-prompt"),
    tools: list[str] = typer.Option(None, "--tool", help="A built-in tool it may call (repeatable): thing_query, ..."),
    config: str = typer.Option(None, "--config", help="The whole config as a JSON object (or @file.json); the "
                                                      "options above override its fields."),
    deploy: bool = typer.Option(False, "--deploy", help="Deploy it to production at once (chat uses production)."),
    as_json: bool = JsonOption,
) -> None:
    """Create an agent with its first development config (`--deploy` promotes it to production too)."""
    body = json_object(config, "--config")
    body |= {k: v for k, v in {"model": model, "system_prompt": system_prompt, "tools": tools or None}.items()
             if v is not None}
    if tools:
        body.setdefault("permissions", [{"tool": tool} for tool in tools])
    from shared.contracts.agents import AgentCreate

    fields = {"type": type_, "description": description}
    AgentCreate.model_validate({"slug": slug, "name": name or slug, "config": body,  # checked here: the line names
                                **{k: v for k, v in fields.items() if v is not None}})  # the field at fault

    async def work(one: Any) -> Any:
        agent = await one.agents.create(slug, name or slug, type=type_, description=description, config=body)
        return await one.agents.deploy(agent.slug) if deploy else agent

    show_agent(act(work), as_json)


@agents_app.command("list")
def list_agents(
    archived: bool = typer.Option(False, "--archived", help="Archived agents too."),
    cursor: UUID = typer.Option(None, help="The next page, as the last page printed it."),
    limit: int = typer.Option(50, min=1, max=200),
    as_json: bool = JsonOption,
) -> None:
    """The organization's agents: slug, type, status, config versions (development, production) and model."""
    page = act(lambda one: one.agents.list(include_archived=archived or None, cursor=cursor, limit=limit))
    if as_json:
        print_json(page)
        return
    print_table(AGENT_COLUMNS, [(a.slug, a.type, a.status, f"v{a.development.version}",
                                 f"v{a.production.version}" if a.production else "-",
                                 (a.production or a.development).model) for a in page.agents], empty="no agents")
    if page.next_cursor:
        print(f"next page: --cursor {page.next_cursor}")


@agents_app.command("show")
def show(slug: str, as_json: bool = JsonOption) -> None:
    """One agent: its type, status, configs (development and production) and what it may do."""
    show_agent(act(lambda one: one.agents.get(slug)), as_json)


@agents_app.command("deploy")
def deploy(slug: str, as_json: bool = JsonOption) -> None:
    """Promote the agent's current development config to production (what chats use)."""
    agent = act(lambda one: one.agents.deploy(slug))
    if as_json:
        print_json(agent)
    else:
        print(f"deployed {agent.slug}: production v{agent.production.version} ({agent.production.model})")


@agents_app.command("card")
def card(slug: str = typer.Argument(..., help="A deployed agent."), as_json: bool = JsonOption) -> None:
    """The URL of the agent's public A2A card; its A2A server (JSON-RPC and HTTP+JSON) is the URL without the
    `/.well-known/...` part. The gateway is `ONE_URL`, else this machine's (`ONE_GATEWAY_HOST`/`_PORT`)."""
    async def work(one: Any) -> tuple[Any, Any]:
        from shared.contracts.tenancy import ORG_RESOLVE_PUBLIC  # the org's slug, as its A2A URLs name it

        agent, verified = await one.agents.get(slug), await one.whoami()
        return agent, await one.request(ORG_RESOLVE_PUBLIC, {"ref": str(verified.org_id)})

    agent, org = act(work)
    if agent.production is None:
        fail(f"agent {slug} is not deployed: only deployed agents have an A2A card", f"one agents deploy {slug}")
    gateway = (os.environ.get("ONE_URL") or f"http://{os.environ.get('ONE_GATEWAY_HOST', '127.0.0.1')}:"
               f"{os.environ.get('ONE_GATEWAY_PORT', '8080')}").rstrip("/")
    base = f"{gateway}/a2a/{org.slug}/{agent.slug}"
    if as_json:
        print_json({"card_url": f"{base}/.well-known/agent-card.json", "a2a_url": base})
    else:
        print(f"{base}/.well-known/agent-card.json")


@agents_app.command("chat")
def chat(
    slug: str = typer.Argument(..., help="The agent."),
    message: str = typer.Argument(..., help="What to say."),
    thread: UUID = typer.Option(None, "--thread", help="Continue this conversation (its id)."),
    external_thread: str = typer.Option(None, "--external-thread", help="An integration's thread id: reused when "
                                                                       "it exists, else created."),
    environment: str = typer.Option(None, "--env", help="production (default) or development."),
    as_json: bool = typer.Option(False, "--json", help="Wait for the run and print the reply as JSON (no streaming)."),
) -> None:
    """Send the agent a message and stream its answer as it arrives; ends with the model and the run's id."""
    fields = {"thread_id": thread, "external_thread_id": external_thread, "environment": environment}
    fields = {k: v for k, v in fields.items() if v is not None}
    if as_json:
        print_json(act(lambda one: one.agents.chat(slug, message, **fields)))
        return
    act(lambda one: _stream(one, slug, message, fields))


async def _stream(one: Any, slug: str, message: str, fields: dict[str, Any]) -> None:
    """Write each event of the streamed chat as it comes: text inline, tools on lines of their own."""
    from contextlib import aclosing

    at_line_start = True

    def write(text: str) -> None:
        nonlocal at_line_start
        sys.stdout.write(text)
        sys.stdout.flush()
        at_line_start = text.endswith("\n")

    def line(text: str) -> None:
        write(("" if at_line_start else "\n") + text + "\n")

    async with aclosing(one.agents.chat_stream(slug, message, **fields)) as events:  # closed before the connection
        async for event in events:
            if event.kind == "text":
                write(event.text)
            elif event.kind == "tool_call":
                line(f"> {event.tool_name} {_short(event.arguments)}")
            elif event.kind == "tool_result":
                line(f"< {event.tool_name or 'tool'} {'error ' if event.is_error else ''}{_short(event.result)}")
            elif event.kind == "finished":
                line(f"-- model {event.model}, run {event.run_id}")
            elif event.kind == "failed":
                if not at_line_start:
                    write("\n")
                event.raise_for_failure()


def _short(value: Any) -> str:
    import json

    text = value if isinstance(value, str) else json.dumps(value, default=str, separators=(",", ":"))
    return text if len(text) <= RESULT_CHARS else text[:RESULT_CHARS - 3] + "..."
