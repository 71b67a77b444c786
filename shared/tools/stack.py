"""The embedded stack behind `one up`: servers, migrations, and one process per service.

With `DATABASE_URL` / `NATS_URL` set, those servers are used; otherwise Postgres
(with pgvector) and nats-server (with JetStream) run from the data directory, and
data survives restarts. `runtime.json` in the data directory tells `one status`
and `one serve` where the running stack listens.
"""

import asyncio
import fcntl
import importlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import SecretStr

from shared.kernel import subjects
from shared.kernel.settings import Settings, get_settings

if TYPE_CHECKING:  # imported where used: the CLI imports this module for `effective_settings` on every command
    from shared.kernel.errors import OneError
    from shared.runtime.service import HealthReport, ServiceDefinition

from shared.tools.embedded import EmbeddedNats, EmbeddedPostgres
from shared.tools.sdk.connect import with_running_stack
from shared.tools.stack_secrets import StackSecrets
from shared.tools.stack_supervisor import ADAPTERS, Server, Supervisor

__all__ = ["ADAPTERS", "Supervisor"]  # where `one up`'s callers have always found them

log = logging.getLogger(__name__)


NATS_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "nats" / "nats-server.conf"
"""Who may do what on the bus: the file compose and Kubernetes deploy, run as it is by the embedded nats-server."""
NATS_USERS = (*subjects.SERVICES, *ADAPTERS, "cli")


def service_module(name: str, module: str) -> ModuleType:
    """`services.<name>.<module>`, found by name when it is needed: the one way the tools reach into a service."""
    if name not in subjects.SERVICES:
        raise ValueError(f"unknown service {name!r}; one of {', '.join(subjects.SERVICES)}")
    return importlib.import_module(f"services.{name}.{module}")


def load_service(name: str) -> "ServiceDefinition":
    return service_module(name, "app").definition


def settings_of(name: str, settings: Settings) -> Settings:
    """A service's own settings: the common values of `settings`, the service's fields from the environment."""
    return load_service(name).settings.from_common(settings)


def all_migrations() -> dict[str, str]:
    """Every schema's migrations package, by service; services that own no schema have none."""
    definitions = (load_service(name) for name in subjects.SERVICES)
    return {d.name: d.migrations for d in definitions if d.owns_schema}


def effective_settings(settings: Settings | None = None) -> Settings:
    """Settings with the URLs of the running embedded stack filled in where unset (as the SDK finds them), and
    its app role's password when its database is the one used (`one bootstrap` beside a running `one up`)."""
    given = settings or get_settings()
    found = with_running_stack(given)
    if given.database_url or not found.database_url or given.db_app_password:
        return found
    secrets = StackSecrets.existing(given.data_dir)
    return found if secrets is None else found.model_copy(update={"db_app_password": SecretStr(secrets.postgres_app)})


def redacted(url: str | None) -> str | None:
    """`url` with its password (if any) shown as `***`: what may be printed."""
    parts = urlsplit(url or "")
    if not parts.password:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))


def with_login(url: str, user: str | None, password: SecretStr | None) -> str:
    """`nats://user:password@host:port`: a URL that carries its login, as `runtime.json` gives it to the CLI."""
    if not user or not password:
        return url
    parts = urlsplit(url)
    login = f"{quote(user, safe='')}:{quote(password.get_secret_value(), safe='')}"
    return urlunsplit(parts._replace(netloc=f"{login}@{parts.hostname}:{parts.port}"))


@dataclass
class EmbeddedServers:
    """Starts whichever of Postgres / NATS the settings don't point at, secure by default.

    Postgres: the superuser and the app role have passwords, pg_hba.conf wants SCRAM for every connection.
    NATS: deploy/nats/nats-server.conf itself (one user per service, the mailer and the CLI, each allowed its
    own subjects only). The passwords are generated on the first start into `<data_dir>/secrets.json` (0600)
    and reused. Both listen on 127.0.0.1 only. The returned settings log in as the superuser and the `cli`
    user: what `one up` itself needs (migrations, bootstrap, health); each child gets its own login.
    """

    settings: Settings
    postgres: EmbeddedPostgres | None = None
    nats: EmbeddedNats | None = None
    secrets: StackSecrets | None = None

    def start(self) -> Settings:
        update: dict[str, object] = {}
        data_dir = self.settings.data_dir.resolve()
        if not (self.settings.database_url and self.settings.nats_url):
            self.secrets = StackSecrets.ensure(data_dir, NATS_USERS)
        if not self.settings.database_url:
            self.postgres = EmbeddedPostgres(data_dir / "postgres", password=self.secrets.postgres_superuser)
            update["database_url"] = self.postgres.start()
            update["db_app_password"] = SecretStr(self.secrets.postgres_app)
        if not self.settings.nats_url:
            self.nats = EmbeddedNats(data_dir / "nats", http_port=0, config_file=NATS_CONFIG,
                                     env=self.secrets.nats_environment())
            update["nats_url"] = self.nats.start()
            update["nats_user"], update["nats_password"] = "cli", SecretStr(self.secrets.nats["cli"])
        return self.settings.model_copy(update=update)

    def nats_passwords(self) -> dict[str, str]:
        """Each child's NATS password, when the NATS is ours; empty when the settings named another server."""
        return dict(self.secrets.nats) if self.nats and self.secrets else {}

    def watched(self) -> list[Server]:
        """The servers started here, for the supervisor to restart on the same data when one dies."""
        found = []
        if self.postgres:
            found.append(Server("postgres", lambda: bool(self.postgres.running_pid()), self.postgres.start))
        if self.nats:
            found.append(Server("nats-server", lambda: bool(self.nats.running_pid()), self.nats.start))
        return found

    def stop(self) -> None:
        """Stop what this process started; a server that was already running stays up."""
        if self.nats and not self.nats.reused:
            self.nats.stop()
        if self.postgres and not self.postgres.reused:
            self.postgres.stop()


async def fetch_health(
    settings: Settings, timeout: float = 2.0, services: tuple[str, ...] = subjects.SERVICES
) -> "dict[str, HealthReport | OneError]":
    """Ask services for their health over the bus, in parallel."""
    from shared.kernel.errors import OneError
    from shared.runtime.client import BusClient
    from shared.runtime.service import health_spec

    async with await BusClient.connect(settings, name="one-status") as bus:

        async def one(name: str) -> "HealthReport | OneError":
            try:
                return await bus.request(health_spec(name), timeout=timeout)
            except OneError as error:
                return error

        results = await asyncio.gather(*(one(name) for name in services))
    return dict(zip(services, results, strict=True))


def write_runtime(settings: Settings, servers: EmbeddedServers) -> None:
    """Where this `one up` listens, for `one status` and the SDK; only the data directory's lock holder writes it."""
    runtime = {
        "database_url": settings.database_url,
        "nats_url": with_login(settings.nats_url, settings.nats_user, settings.nats_password) if servers.nats
        else settings.nats_url,
        "nats_monitor": f"http://127.0.0.1:{servers.nats.http_port}" if servers.nats else None,
        "pid": os.getpid(),
    }
    # Mode 0600 like the credentials file: its URLs carry the superuser's and the CLI's passwords.
    descriptor = os.open(settings.runtime_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(runtime, file, indent=2)


def remove_runtime(settings: Settings) -> bool:
    """Remove runtime.json if this process wrote it: another stack's file is never deleted."""
    try:
        owner = json.loads(settings.runtime_file.read_text()).get("pid")
    except (OSError, ValueError):
        return False
    if owner != os.getpid():
        return False
    settings.runtime_file.unlink(missing_ok=True)
    return True


class DataDirBusy(Exception):
    """Another live process holds the data directory's lock."""

    def __init__(self, data_dir: Path, pid: int | None) -> None:
        super().__init__(f"{data_dir} is in use by PID {pid}")
        self.data_dir, self.pid = data_dir, pid


@dataclass
class DataDirLock:
    """One `one up` per data directory: an exclusive `flock` on `<data_dir>/one-up.lock`, holding the owner's PID.

    The kernel drops the lock when its holder dies however it dies, so a lock left by a dead process is
    simply taken over (`stale_pid` says whose it was). The file is emptied on release, never deleted:
    deleting it would let two processes lock two different files of the same name.
    """

    path: Path
    descriptor: int
    stale_pid: int | None = None

    @classmethod
    def acquire(cls, data_dir: Path) -> "DataDirLock":
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / "one-up.lock"
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _pid_in(descriptor)
            os.close(descriptor)
            raise DataDirBusy(data_dir, holder) from None
        previous = _pid_in(descriptor)
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        return cls(path, descriptor, previous if previous and previous != os.getpid() else None)

    def release(self) -> None:
        if self.descriptor < 0:
            return
        os.ftruncate(self.descriptor, 0)
        os.close(self.descriptor)  # closing drops the flock
        self.descriptor = -1


def _pid_in(descriptor: int) -> int | None:
    try:
        return int(os.pread(descriptor, 32, 0).decode().strip() or 0) or None
    except ValueError:
        return None


async def bring_up(settings: Settings) -> tuple[Settings, EmbeddedServers, str | None]:
    """Start (or reuse) the servers, migrate every schema, and make sure a platform owner
    exists with a key in the credentials file; returns the key when it is new."""
    from shared.runtime.migrate import migrate_services

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    servers = EmbeddedServers(settings)
    settings = servers.start()
    try:
        await migrate_services(settings, all_migrations())
        return settings, servers, await ensure_platform_credentials(settings)
    except BaseException:
        servers.stop()  # what this start began is not left running behind an error
        raise


async def bootstrap(settings: Settings, *, email: str | None = None, new_key: bool = False) -> Any:
    """The platform org, its owner and a key, created once (tenancy's `bootstrap_platform`, over the database
    connection the services use); `new_key`: another key for the existing platform owner."""
    from shared.runtime.db import Database

    bootstrap_platform = service_module("tenancy", "bootstrap").bootstrap_platform
    tenancy_settings = settings_of("tenancy", settings)  # the pepper
    db = Database.for_app(settings, "one-bootstrap")
    try:
        return await bootstrap_platform(db, tenancy_settings, email=email, new_key_if_exists=new_key)
    finally:
        await db.dispose()


async def ensure_platform_credentials(settings: Settings) -> str | None:
    """First start: the platform org, its owner and an API key (saved for the CLI).

    Later starts create nothing; if the credentials file was deleted, a fresh key
    for the platform owner replaces it (a key's secret is never stored, so the old
    one cannot be shown again).
    """
    from shared.tools.credentials import credentials_path, save_credentials

    result = await bootstrap(settings, new_key=not credentials_path(settings).exists())
    if result.api_key is None:
        return None
    save_credentials(
        settings, api_key=result.api_key, org_id=result.organization.id, person_id=result.owner.id, email=result.owner.email
    )
    return result.api_key
