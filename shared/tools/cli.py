"""The `one` command: run the stack, one service, or ask it how it is."""

import asyncio
import logging
import signal
import sys
import time
from enum import StrEnum

import typer
from rich.console import Console
from rich.table import Table

from shared.contracts.tenancy import EMAIL_VERIFY, VERIFY_KEY, EmailVerified, VerifiedKey, VerifyKey
from shared.kernel import subjects
from shared.kernel.errors import OneError
from shared.kernel.settings import get_settings
from shared.runtime.client import BusClient
from shared.runtime.metrics import metrics_served
from shared.runtime.service import HealthReport, ServiceRuntime
from shared.tools.cli_events import api_key_or_exit, app as events_app, publish
from shared.tools.cli_knowledge import app as knowledge_app
from shared.tools.credentials import credentials_path
from shared.tools.stack import (
    Supervisor,
    bring_up,
    effective_settings,
    fetch_health,
    load_service,
    service_module,
    settings_of,
    write_runtime,
)

ServiceName = StrEnum("ServiceName", {name: name for name in subjects.SERVICES})
app = typer.Typer(help="ONE on a bus: the ONE ontology as services on NATS and Postgres.", no_args_is_help=True)
app.add_typer(events_app, name="events")
app.add_typer(knowledge_app, name="knowledge")
app.command()(publish)
console = Console()


def _logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _health_table(reports: dict[str, HealthReport | OneError]) -> Table:
    table = Table("service", "healthy", "version", "schema", "broker", "outbox", "detail")
    for name, report in reports.items():
        if isinstance(report, OneError):
            table.add_row(name, "[red]no[/red]", "-", "-", "-", "-", f"{report.code}: {report.message}")
            continue
        schema = report.schema_state
        table.add_row(
            name,
            "[green]yes[/green]" if report.healthy else "[red]no[/red]",
            report.version,
            f"{schema.state} (v{schema.version}/{schema.expected})",
            report.broker.server or "disconnected",
            str(report.outbox_pending),
            f"up {report.uptime_seconds:.0f}s",
        )
    return table


def _all_healthy(reports: dict[str, HealthReport | OneError]) -> bool:
    return all(isinstance(r, HealthReport) and r.healthy for r in reports.values())


def _ask_health(timeout: float, services: tuple[str, ...] = subjects.SERVICES) -> dict[str, HealthReport | OneError]:
    """Health over the bus, or exit 1 with the reason when there is no bus to ask."""
    settings = effective_settings()
    if not settings.nats_url:
        console.print("[red]nothing is running[/red]: start it with `make run` (or set NATS_URL)")
        raise typer.Exit(1)
    try:
        reports = asyncio.run(fetch_health(settings, timeout, services))
    except Exception as error:  # the broker itself is unreachable
        console.print(f"[red]cannot reach NATS at {settings.nats_url}[/red]: {error}")
        raise typer.Exit(1) from None
    console.print(_health_table(reports))
    return reports


@app.command()
def status(timeout: float = typer.Option(2.0, help="Seconds to wait for each service.")) -> None:
    """Show every service's health over the bus; exit 0 only when all six are healthy."""
    raise typer.Exit(0 if _all_healthy(_ask_health(timeout)) else 1)


@app.command()
def whoami() -> None:
    """Verify the CLI's API key (`ONE_API_KEY` or the credentials file) and show who it acts as."""
    settings = effective_settings()
    key = api_key_or_exit(settings)

    async def verify() -> VerifiedKey:
        async with await BusClient.connect(settings, name="one-whoami") as bus:
            return await bus.request(VERIFY_KEY, VerifyKey(key=key))

    verified = asyncio.run(verify())
    console.print(f"org {verified.org_id} ({verified.org_status}), actor {verified.actor_id}, role {verified.role}, key {verified.key_id}")


@app.command("verify-email")
def verify_email(token: str = typer.Argument(..., help="The token from the verification email (`ev_...`).")) -> None:
    """Confirm an email address with the token the mailer sent (no API key needed: the token is the proof)."""
    settings = effective_settings()

    async def verify() -> EmailVerified:
        async with await BusClient.connect(settings, name="one-verify-email") as bus:
            return await bus.request(EMAIL_VERIFY, {"token": token})

    verified = asyncio.run(verify())
    console.print(f"{verified.email} verified at {verified.email_verified_at.isoformat()}")


@app.command()
def mailer(
    check: bool = typer.Option(False, "--check", help="Only exit 0 when this host's mailer is alive (its probes)."),
) -> None:
    """Deliver the mail drop (email verification tokens) over SMTP, or as .eml files when ONE_SMTP_HOST is unset."""
    mail_adapter = service_module("tenancy", "mailer")
    settings = settings_of("tenancy", effective_settings())
    if check:
        raise typer.Exit(0 if mail_adapter.heartbeat_is_fresh(settings) else 1)
    _logging(settings.log_level)
    if not settings.nats_url:
        console.print("[red]nothing is running[/red]: start it with `make run` (or set NATS_URL)")
        raise typer.Exit(1)
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
    settings = effective_settings()
    _logging(settings.log_level)
    runtime = ServiceRuntime(load_service(service.value), settings)
    with metrics_served(settings):
        asyncio.run(runtime.run_until_signalled())


@app.command()
def migrate() -> None:
    """Create or upgrade every service's schema (the deploy-time migration job)."""
    settings = effective_settings()
    _logging(settings.log_level)

    async def run() -> dict[str, list[int]]:
        from shared.runtime.migrate import migrate_services
        from shared.tools.stack import all_migrations

        return await migrate_services(settings, all_migrations())

    for schema, versions in asyncio.run(run()).items():
        console.print(f"{schema}: {'applied ' + ', '.join(map(str, versions)) if versions else 'up to date'}")


@app.command()
def up(wait: float = typer.Option(60.0, help="Seconds to wait for every service to be healthy.")) -> None:
    """Start Postgres, NATS, all six services and the mailer; Ctrl-C or SIGTERM stops everything cleanly."""
    base = get_settings()
    _logging(base.log_level)
    settings, servers, new_key = asyncio.run(bring_up(base))
    write_runtime(settings, servers)
    supervisor = Supervisor(settings)
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        supervisor.start_all()
        deadline = time.monotonic() + wait
        reports: dict[str, HealthReport | OneError] = {}
        while not stopping and time.monotonic() < deadline:
            reports = asyncio.run(fetch_health(settings, timeout=1.0))
            if _all_healthy(reports):
                break
            time.sleep(0.5)
        console.print(_health_table(reports))
        console.print(f"Postgres  {settings.database_url}")
        console.print(f"NATS      {settings.nats_url}")
        console.print(f"Logs      {settings.data_dir.resolve() / 'logs'}")
        gateway = settings_of("gateway", settings)
        console.print(f"Gateway   http://{gateway.gateway_host}:{gateway.gateway_port}  (OpenAPI at /openapi.json)"
                      if gateway.gateway_port else "Gateway   on a free port: see its log")
        for name, port in supervisor.metrics_ports().items():
            console.print(f"Metrics   {name:<10} http://127.0.0.1:{port}/metrics")
        mail = settings_of("tenancy", settings)
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
        settings.runtime_file.unlink(missing_ok=True)
        console.print("Stopped.")


def main() -> None:
    try:
        app()
    except OneError as error:
        console.print(f"[red]{error.code}[/red]: {error.message}")
        sys.exit(2)


if __name__ == "__main__":
    main()
