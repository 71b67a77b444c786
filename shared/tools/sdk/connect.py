"""How `One.connect()` finds the platform and the credential it acts with.

In order: an explicit `url` (HTTP) or `nats_url` (bus); `ONE_URL` in the environment (HTTP, through
the gateway); else the bus of `NATS_URL`, or of the running embedded stack (`runtime.json` in the
data directory, as `one status` finds it). The key: an explicit `key`, else `ONE_API_KEY`, else the
data directory's credentials file (refused when others may read it). Without a key nothing
connects: the SDK and the CLI act only as a verified credential.

A client reads its few settings with `ClientSettings`, not the services' `Settings`: importing
pydantic-settings was a fifth of a `one whoami`.
"""

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from pydantic import SecretStr

from shared.kernel.errors import Unavailable
from shared.tools.credentials import load_api_key
from shared.tools.sdk.transport import NoCredentials, Transport

if TYPE_CHECKING:
    from shared.contracts.tenancy import VerifiedKey
    from shared.kernel.envelope import MessageSpec
    from shared.kernel.settings import Settings

S = TypeVar("S", "Settings", "ClientSettings")

_ENVIRONMENT = {  # field -> the variables `Settings` reads it from, first found wins (tests/unit checks they agree)
    "data_dir": ("ONE_DATA_DIR",),
    "nats_url": ("ONE_NATS_URL", "NATS_URL"),
    "nats_user": ("ONE_NATS_USER",),
    "nats_password": ("ONE_NATS_PASSWORD",),
    "request_timeout": ("ONE_REQUEST_TIMEOUT",),
}


@dataclass(frozen=True)
class ClientSettings:
    """The fields of `Settings` a client uses (what `BusClient.connect` and the credentials file read), from the
    same environment variables, without pydantic-settings. A value `Settings` would refuse is refused by
    `Settings` itself: the same error as everywhere else."""

    data_dir: Path = Path(".data")
    nats_url: str | None = None
    nats_user: str | None = None
    nats_password: SecretStr | None = None
    request_timeout: float = 10.0
    database_url: str | None = None  # a client never uses it; `with_running_stack` fills it like the nats_url

    @property
    def runtime_file(self) -> Path:
        return self.data_dir / "runtime.json"

    @classmethod
    def from_environment(cls) -> "ClientSettings":
        environment = {name.upper(): value for name, value in os.environ.items()}  # case-insensitive, as Settings
        found = {field: next((environment[n] for n in names if n in environment), None)
                 for field, names in _ENVIRONMENT.items()}
        try:
            timeout = float(found["request_timeout"]) if found["request_timeout"] is not None else cls.request_timeout
        except ValueError:
            from shared.kernel.settings import Settings

            Settings()  # raises the ValidationError every other command shows for it
            raise
        return cls(
            data_dir=Path(found["data_dir"]) if found["data_dir"] is not None else cls.data_dir,
            nats_url=found["nats_url"], nats_user=found["nats_user"],
            nats_password=SecretStr(found["nats_password"]) if found["nats_password"] is not None else None,
            request_timeout=timeout,
        )


def _updated(settings: S, update: dict[str, Any]) -> S:
    if dataclasses.is_dataclass(settings):
        return dataclasses.replace(settings, **update)
    return settings.model_copy(update=update)


def base_settings(data_dir: str | Path | None = None, timeout: float | None = None) -> ClientSettings:
    settings = ClientSettings.from_environment()
    update: dict[str, object] = {}
    if data_dir is not None:
        update["data_dir"] = Path(data_dir)
    if timeout is not None:
        update["request_timeout"] = timeout
    return _updated(settings, update) if update else settings


def with_running_stack(settings: S) -> S:
    """`settings` with the running embedded stack's URLs (its `runtime.json`) where they are unset."""
    if (settings.database_url and settings.nats_url) or not settings.runtime_file.exists():
        return settings
    runtime = json.loads(settings.runtime_file.read_text())
    return _updated(settings, {
        "database_url": settings.database_url or runtime.get("database_url"),
        "nats_url": settings.nats_url or runtime.get("nats_url"),
    })


def api_key(settings: ClientSettings, key: str | None = None) -> str:
    found = key or load_api_key(settings)
    if not found:
        raise NoCredentials("no API key: pass key=, set ONE_API_KEY, or start the stack with `one up` once "
                            f"(it saves the platform owner's key in {settings.data_dir / 'credentials.json'})")
    return found


async def open_transport(
    *, url: str | None = None, key: str | None = None, nats_url: str | None = None, data_dir: str | Path | None = None,
    timeout: float | None = None, org: UUID | None = None, name: str = "one-sdk",
) -> Transport:
    settings = base_settings(data_dir, timeout)
    url = url or (None if nats_url else os.environ.get("ONE_URL"))
    if url:
        from shared.tools.sdk.http import HttpTransport  # httpx only for a remote platform

        return HttpTransport(url, api_key(settings, key), timeout=settings.request_timeout, org=org)
    from shared.tools.sdk.bus import BusTransport

    settings = _local_bus(settings, nats_url)
    return await BusTransport.open(settings, api_key(settings, key), org=org, name=name)


def _local_bus(settings: ClientSettings, nats_url: str | None = None) -> ClientSettings:
    settings = with_running_stack(_updated(settings, {"nats_url": nats_url}) if nats_url else settings)
    if not settings.nats_url:
        raise Unavailable("nothing to connect to: set ONE_URL (and ONE_API_KEY) for a platform over HTTP, "
                          "or start one here with `one up` (or set NATS_URL)")
    return settings


def key_verification(key: str, org: UUID | None = None) -> "tuple[MessageSpec[Any, VerifiedKey], dict[str, Any]]":
    """The request that verifies a key: `tenancy.key.verify`, or with `org` `tenancy.key.act_in_org` (a platform
    owner acting in another org, logged there as cross-org access)."""
    from shared.contracts.tenancy import ACT_IN_ORG, VERIFY_KEY

    return (VERIFY_KEY, {"key": key}) if org is None else (ACT_IN_ORG, {"key": key, "org_id": org})


def verify_blocking(*, key: str | None = None, nats_url: str | None = None, data_dir: str | Path | None = None,
                    timeout: float | None = None, name: str = "one-sdk") -> "VerifiedKey | None":
    """The key as tenancy verifies it, in one blocking request on the local bus (`blocking_bus.py`: no asyncio,
    no nats-py), for a process that needs nothing else (`one whoami`). None where that does not apply (`ONE_URL`:
    the gateway; a TLS bus): `One.connect()` then. Found as `One.connect()` finds them: the bus, the key."""
    if not nats_url and os.environ.get("ONE_URL"):
        return None
    from shared.kernel.envelope import Envelope
    from shared.tools.sdk.blocking_bus import BlockingBus, NeedsFullClient

    settings = _local_bus(base_settings(data_dir, timeout), nats_url)
    spec, payload = key_verification(api_key(settings, key))
    try:
        bus = BlockingBus.connect(settings, name)
    except NeedsFullClient:
        return None
    with bus:
        return bus.request(spec, Envelope(type=spec.type, payload=payload))
