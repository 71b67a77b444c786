"""The `one` command: run the stack, one service, or ask it how it is."""

import os
import sys
import time
from enum import StrEnum
from typing import TYPE_CHECKING

import typer

from shared.kernel import subjects
from shared.tools.cli_lazy import import_on_first_use, lazy_group, skip_pydantic_plugin_discovery
from shared.tools.cli_output import (
    Column,
    ConsoleOnFirstUse,
    act,
    anonymous_request,
    fail,
    print_json,
    print_table,
    run,
)

if TYPE_CHECKING:  # the commands import what they use when they run: `one whoami` loads no service, no model, no
    # pydantic-settings, no rich, no stack (tests/cli/test_rendering.py lists what it must not load)
    from shared.kernel.errors import OneError
    from shared.kernel.settings import Settings
    from shared.runtime.service import HealthReport

LAZY_COMMANDS = {
    "asyncapi": "shared.tools.cli_docs:asyncapi",
    "events": "shared.tools.cli_events:app",
    "knowledge": "shared.tools.cli_knowledge:app",
    "publish": "shared.tools.cli_events:publish",
    "things": "shared.tools.cli_graph:things_app",
    "connections": "shared.tools.cli_graph:connections_app",
    "graph": "shared.tools.cli_graph:graph_app",
    "orgs": "shared.tools.cli_tenancy:orgs_app",
    "members": "shared.tools.cli_tenancy:members_app",
    "invites": "shared.tools.cli_tenancy:invites_app",
    "roles": "shared.tools.cli_tenancy:roles_app",
    "policies": "shared.tools.cli_tenancy:policies_app",
    "keys": "shared.tools.cli_tenancy:keys_app",
    "quotas": "shared.tools.cli_tenancy:quotas_app",
    "rate-limits": "shared.tools.cli_tenancy:rate_limits_app",
    "jobs": "shared.tools.cli_jobs:jobs_app",
    "social": "shared.tools.cli_social:social_app",
    "meetings": "shared.tools.cli_social:meetings_app",
    "reminders": "shared.tools.cli_social:reminders_app",
    "agents": "shared.tools.cli_agents:agents_app",
    "x402": "shared.tools.cli_x402:x402_app",
    "ap2": "shared.tools.cli_ap2:ap2_app",
    "products": "shared.tools.cli_commerce:products_app",
    "checkout": "shared.tools.cli_commerce:checkout_app",
    "discounts": "shared.tools.cli_discounts:discounts_app",
    "webhooks": "shared.tools.cli_webhook_sources:webhooks_app",
    "packs": "shared.tools.cli_packs:packs_app",
    "plugins": "shared.tools.cli_plugins:plugins_app",
    "access": "shared.tools.cli_access:access_app",
    "backup": "shared.tools.cli_backup:backup", "restore": "shared.tools.cli_backup:restore",
}
"""Commands defined in other modules, imported only when run (`shared/tools/cli_lazy.py`)."""

ServiceName = StrEnum("ServiceName", {name: name for name in subjects.SERVICES})
app = typer.Typer(help="ONE on a bus: the ONE ontology as services on NATS and Postgres.", no_args_is_help=True,
                  cls=lazy_group(LAZY_COMMANDS))
console = ConsoleOnFirstUse()


def _version(shown: bool) -> None:
    if shown:
        from shared import __version__

        print(f"one {__version__}")
        raise typer.Exit()


@app.callback()
def options(
    timeout: float = typer.Option(None, "--timeout", envvar="ONE_REQUEST_TIMEOUT", min=0.1,
                                  help="Seconds each request waits for its answer (default 10)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    url: str = typer.Option(None, "--url", envvar="ONE_URL", help="A platform's gateway (https://...): commands go "
                            "over HTTP with the API key, instead of the local stack's bus."),
) -> None:
    """ONE on a bus: the ONE ontology as services on NATS and Postgres."""
    if url:  # the SDK's discovery reads it: every command that connects goes through the gateway
        os.environ["ONE_URL"] = url
    if timeout is not None:  # every Settings built from here on (bus client, SDK) reads it
        os.environ["ONE_REQUEST_TIMEOUT"] = str(timeout)
        if loaded := sys.modules.get("shared.kernel.settings"):  # not loaded yet: nothing cached to forget
            loaded.get_settings.cache_clear()


def _logging(level: str) -> None:
    import logging  # not at the top: `one whoami` logs nothing

    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


HEALTH_COLUMNS = [Column("service"), Column("healthy"), Column("version"), Column("schema"), Column("outbox"),
                  Column("broker", "text"), Column("detail", "text")]


def health_rows(reports: "dict[str, HealthReport | OneError]") -> list[list[str]]:
    """One row per service for `print_table(HEALTH_COLUMNS, ...)`: fits 80 columns."""
    from shared.kernel.errors import OneError

    rows = []
    for name, report in reports.items():
        if isinstance(report, OneError):
            rows.append([name, "no", "-", "-", "-", "-", f"{report.code}: {report.message}"])
            continue
        schema = report.schema_state
        outbox = "-" if report.outbox_pending is None else str(report.outbox_pending)
        rows.append([name, "yes" if report.healthy else "no", report.version,
                     f"{schema.state} v{schema.version}/{schema.expected}", outbox,
                     report.broker.server or "disconnected", f"up {report.uptime_seconds:.0f}s"])
    return rows


def _print_health(reports: "dict[str, HealthReport | OneError]", as_json: bool = False) -> None:
    if as_json:
        print_json({name: r.to_payload() if isinstance(r, Exception) else r for name, r in reports.items()})
    else:
        print_table(HEALTH_COLUMNS, health_rows(reports), out=console)


def _all_healthy(reports: "dict[str, HealthReport | OneError]") -> bool:
    from shared.runtime.service import HealthReport

    return all(isinstance(r, HealthReport) and r.healthy for r in reports.values())


def _ask_health(timeout: float, services: tuple[str, ...] = subjects.SERVICES,
                as_json: bool = False) -> "dict[str, HealthReport | OneError]":
    """Health over the bus (or the gateway's `/v1/status` with ONE_URL), or exit 1 with the reason when there is
    nothing to ask."""
    if os.environ.get("ONE_URL"):  # a remote platform: only its gateway is reachable, with a key
        every = act(lambda one: one.status(timeout))
        reports = {name: every[name] for name in services}
        _print_health(reports, as_json)
        return reports
    import asyncio

    from shared.tools.stack import effective_settings, fetch_health

    settings = effective_settings()
    if not settings.nats_url:
        fail("nothing is running", "start it with `make run` (or set NATS_URL)")
    try:
        reports = asyncio.run(fetch_health(settings, timeout, services))
    except Exception as error:  # the broker itself is unreachable
        fail(f"cannot reach NATS at {settings.nats_url}: {error}", "is `one up` still running? (`make run`)")
    _print_health(reports, as_json)
    return reports


@app.command()
def status(
    timeout: float = typer.Option(2.0, help="Seconds to wait for each service."),
    as_json: bool = typer.Option(False, "--json", help="Every service's health report as JSON."),
) -> None:
    """Show every service's health over the bus; exit 0 only when all seven are healthy."""
    raise typer.Exit(0 if _all_healthy(_ask_health(timeout, as_json=as_json)) else 1)


@app.command()
def whoami() -> None:
    """Verify the CLI's API key (`ONE_API_KEY` or the credentials file) and show who it acts as."""
    from shared.tools.sdk.connect import verify_blocking  # one request, no event loop: the fastest start

    verified = verify_blocking(name="one-cli") or act(lambda one: one.whoami())
    print(f"org {verified.org_id} ({verified.org_status}), actor {verified.actor_id}, role {verified.role}, "
          f"key {verified.key_id}")  # one line, ids whole, and no rich to import for it


@app.command("verify-email")
def verify_email(token: str = typer.Argument(..., help="The token from the verification email (`ev_...`).")) -> None:
    """Confirm an email address with the token the mailer sent (no API key needed: the token is the proof)."""
    from shared.contracts.tenancy import EMAIL_VERIFY

    verified = anonymous_request(EMAIL_VERIFY, {"token": token})
    console.print(f"{verified.email} verified at {verified.email_verified_at.isoformat()}")


@app.command()
def mailer(
    check: bool = typer.Option(False, "--check", help="Only exit 0 when this host's mailer is alive (its probes)."),
) -> None:
    """Deliver the mail drop (email verification tokens) over SMTP, or as .eml files when ONE_SMTP_HOST is unset."""
    from shared.tools.stack import effective_settings, service_module, settings_of

    mail_adapter = service_module("tenancy", "mailer")
    settings = settings_of("tenancy", effective_settings())
    if check:
        raise typer.Exit(0 if mail_adapter.heartbeat_is_fresh(settings) else 1)
    _logging(settings.log_level)
    if not settings.nats_url:
        fail("nothing is running", "start it with `make run` (or set NATS_URL)")
    raise typer.Exit(mail_adapter.deliver_until_signalled(settings))


@app.command()
def health(
    service: ServiceName,
    timeout: float = typer.Option(2.0, help="Seconds to wait for the answer."),
) -> None:
    """Exit 0 when this one service answers healthy over the bus (container healthchecks)."""
    raise typer.Exit(0 if _all_healthy(_ask_health(timeout, (service.value,))) else 1)


@app.command()
def serve(service: ServiceName) -> None:
    """Run one service until SIGTERM/SIGINT (what each container runs)."""
    import asyncio

    from shared.runtime.metrics import metrics_served
    from shared.runtime.service import ServiceRuntime
    from shared.tools.stack import effective_settings, load_service

    settings = effective_settings()
    _logging(settings.log_level)
    runtime = ServiceRuntime(load_service(service.value), settings)
    with metrics_served(settings):
        if service.value == "gateway":  # the HTTP edge runs on uvloop (uvicorn[standard]), as uvicorn.run would
            import uvloop

            uvloop.run(runtime.run_until_signalled())
        else:
            asyncio.run(runtime.run_until_signalled())


@app.command()
def migrate() -> None:
    """Create or upgrade every service's schema (the deploy-time migration job)."""
    import asyncio

    from shared.tools.stack import effective_settings

    settings = effective_settings()
    _logging(settings.log_level)

    async def migrate_all() -> dict[str, list[int]]:
        from shared.runtime.migrate import migrate_services
        from shared.tools.stack import all_migrations

        return await migrate_services(settings, all_migrations())

    for schema, versions in asyncio.run(migrate_all()).items():
        console.print(f"{schema}: {'applied ' + ', '.join(map(str, versions)) if versions else 'up to date'}")


@app.command("bootstrap")
def bootstrap_command(
    email: str = typer.Option(None, help="The platform owner's email (default: ONE_PLATFORM_OWNER_EMAIL)."),
    new_key: bool = typer.Option(False, "--new-key", help="The platform exists: issue another key for its owner."),
    as_json: bool = typer.Option(False, "--json", help="The org, the owner and the key as JSON."),
) -> None:
    """Create the platform org, its owner and the first API key, printed once (where `one up` does not run).

    Compose and Kubernetes: run it in the tenancy container (docs/operations.md); the key is never logged.
    """
    import asyncio

    from shared.tools.stack import bootstrap, effective_settings, settings_of

    settings = effective_settings()
    tenancy = settings_of("tenancy", settings)
    if tenancy.api_key_pepper is None and not (settings.data_dir / "tenancy" / "pepper").exists():
        fail("no API key pepper here: a key made with a new one would not verify",
             "run it where tenancy runs (its container), or set ONE_API_KEY_PEPPER to tenancy's")
    _logging("WARNING")
    result = asyncio.run(bootstrap(settings, email=email, new_key=new_key))
    if as_json:
        print_json({"organization": result.organization, "owner": result.owner, "api_key": result.api_key,
                    "created": result.created})
    elif result.api_key is None:
        console.print(f"the platform org {result.organization.id} exists (owner {result.owner.email}): nothing created;"
                      " `--new-key` issues another key for its owner")
    else:
        console.print(f"{'created' if result.created else 'found'} platform org {result.organization.id}, "
                      f"owner {result.owner.email}")
        print(f"API key {result.api_key}")
        console.print("shown once: keep it in a secret store; use it as ONE_API_KEY", style="dim")


@app.command()
def up(wait: float = typer.Option(60.0, help="Seconds to wait for every service to be healthy.")) -> None:
    """Start Postgres, NATS, all seven services and the mailer; Ctrl-C or SIGTERM stops everything cleanly.

    The data directory belongs to one `one up` at a time: a second one on it refuses, naming the first's PID.
    """
    from shared.kernel.settings import get_settings
    from shared.tools.cli_output import EXIT_CONFLICT
    from shared.tools.stack import DataDirBusy, DataDirLock

    base = get_settings()
    _logging(base.log_level)
    try:
        lock = DataDirLock.acquire(base.data_dir)
    except DataDirBusy as busy:
        fail(f"{busy.data_dir.resolve()} is in use by another `one up` (PID {busy.pid})",
             f"use that one (`one status`), stop it (Ctrl-C there, or `kill {busy.pid}`), or set ONE_DATA_DIR",
             EXIT_CONFLICT)
    try:
        if lock.stale_pid:
            console.print(f"Took over {lock.path}: its owner (PID {lock.stale_pid}) is no longer running")
        _run_stack(base, wait)
    finally:
        lock.release()


def _run_stack(base: "Settings", wait: float) -> None:
    """`one up` once the data directory is ours: start, print where everything listens, supervise, stop."""
    import asyncio
    import signal

    from shared.tools.credentials import credentials_path
    from shared.tools.stack import (
        Supervisor,
        bring_up,
        fetch_health,
        redacted,
        remove_runtime,
        settings_of,
        write_runtime,
    )

    settings, servers, new_key = asyncio.run(bring_up(base))
    write_runtime(settings, servers)
    supervisor = Supervisor(settings, nats_passwords=servers.nats_passwords())  # each child logs in as itself
    supervisor.watch(*servers.watched())  # a dead Postgres or nats-server is restarted too
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        mail = settings_of("tenancy", settings)
        if not mail.smtp_host:  # the mail directory exists before the first mail: a user can watch it
            mail.mail_path.mkdir(mode=0o700, parents=True, exist_ok=True)
        supervisor.start_all()
        deadline = time.monotonic() + wait
        reports: dict[str, HealthReport | OneError] = {}
        while not stopping and time.monotonic() < deadline:
            reports = asyncio.run(fetch_health(settings, timeout=1.0))
            if _all_healthy(reports):
                break
            time.sleep(0.5)
        _print_health(reports)
        console.print(f"Postgres  {redacted(settings.database_url)}")
        console.print(f"NATS      {settings.nats_url}")
        if servers.nats and servers.nats.http_port:
            console.print(f"NATS monitoring  http://127.0.0.1:{servers.nats.http_port}  (/varz, /connz, /jsz)")
        console.print(f"Logs      {settings.data_dir.resolve() / 'logs'}")
        gateway = settings_of("gateway", settings)
        console.print(f"Gateway   http://{gateway.gateway_host}:{gateway.gateway_port}  (OpenAPI at /openapi.json)"
                      if gateway.gateway_port else "Gateway   on a free port: see its log")
        for name, port in supervisor.metrics_ports().items():
            console.print(f"Metrics   {name:<10} http://127.0.0.1:{port}/metrics")
        if not mail.smtp_host:
            console.print(f"Mail      {mail.mail_path.resolve()}  (no ONE_SMTP_HOST: the mailer writes .eml files here)")
        if new_key:
            console.print(f"API key   {new_key}  (platform owner; shown once, saved in {credentials_path(settings)})")
        console.print("Running. `one status` checks it; Ctrl-C stops it.")
        while not stopping:
            time.sleep(0.5)
            supervisor.restart_dead()
    finally:
        console.print("Stopping services...")
        supervisor.stop_all()
        servers.stop()
        remove_runtime(settings)
        console.print("Stopped.")


def main() -> None:
    """The `one` entry point: errors become one line with the code and the fix (`cli_output.run`)."""
    skip_pydantic_plugin_discovery()
    import_on_first_use("aiohttp")  # nats-py's websocket transport: `one` speaks nats://
    run(app)


if __name__ == "__main__":
    main()
