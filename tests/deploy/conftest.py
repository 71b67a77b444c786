"""Deployment tests: a nats-server with the deployed permission config, and helpers to connect as a user."""

import os
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NatsClient

from shared.kernel import subjects
from shared.kernel.ids import uuid7
from shared.tools.embedded import EmbeddedNats
from shared.tools.stack import ADAPTERS

ROOT = Path(__file__).resolve().parents[2]
NATS_CONF = ROOT / "deploy" / "nats" / "nats-server.conf"
USERS = (*subjects.SERVICES, *ADAPTERS, "cli")


def password_env(user: str) -> str:
    """The environment name nats-server reads a user's password from (see deploy/nats/nats-server.conf)."""
    return f"ONE_NATS_{user.upper()}_PASSWORD"


@pytest.fixture(scope="module")
def nats_passwords() -> dict[str, str]:
    run = uuid7().hex[:12]
    return {user: f"{user}-{run}" for user in USERS}


@pytest.fixture(scope="module")
def secured_nats(tmp_path_factory: pytest.TempPathFactory, nats_passwords: dict[str, str]) -> Iterator[str]:
    """A real nats-server (JetStream on) running deploy/nats/nats-server.conf; passwords from its environment."""
    env = {password_env(user): password for user, password in nats_passwords.items()}
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)  # nats-server inherits them; the config resolves $ONE_NATS_<USER>_PASSWORD
    server = EmbeddedNats(tmp_path_factory.mktemp("secured-nats"), config_file=NATS_CONF)
    try:
        url = server.start()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    yield url
    server.stop()


class Connector:
    """Connects to the secured server as one of the users, collecting the errors the server sends it
    (nats-py reports them lower-cased: `nats: permissions violation for publish to "..."`)."""

    def __init__(self, url: str, passwords: dict[str, str]) -> None:
        self.url = url
        self.passwords = passwords
        self.errors: dict[str, list[str]] = {}
        self._connections: list[NatsClient] = []

    async def __call__(self, user: str, *, password: str | None = None) -> NatsClient:
        errors = self.errors.setdefault(user, [])

        async def on_error(error: Exception) -> None:
            errors.append(str(error))

        nc = await nats.connect(
            self.url, user=user, password=password or self.passwords[user], name=f"test-{user}",
            error_cb=on_error, allow_reconnect=False, connect_timeout=3,
        )
        self._connections.append(nc)
        return nc

    def violations(self, user: str) -> list[str]:
        return [e.lower() for e in self.errors.get(user, []) if "permissions violation" in e.lower()]

    async def close(self) -> None:
        for nc in self._connections:
            if not nc.is_closed:
                await nc.close()


@pytest.fixture
async def connect_as(secured_nats: str, nats_passwords: dict[str, str]):
    connector = Connector(secured_nats, nats_passwords)
    yield connector
    await connector.close()
