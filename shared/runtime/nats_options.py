"""How every NATS connection logs in: its own module, so a bus client (the CLI) connects without importing
FastStream (`shared.runtime.bus`, which re-exports it)."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # read for its fields only: a client passes the `ClientSettings` it read without pydantic-settings
    from shared.kernel.settings import Settings


def connect_options(settings: "Settings", name: str) -> dict:
    """What both FastStream and bare nats-py connections need: URL, credentials, a name."""
    options: dict = {"servers": settings.nats_url, "name": name, "max_reconnect_attempts": -1}
    if settings.nats_user:
        options["user"] = settings.nats_user
        options["password"] = settings.nats_password.get_secret_value() if settings.nats_password else None
    return options
