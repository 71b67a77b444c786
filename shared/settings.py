"""One settings object per process, read from the environment (`ONE_` prefix).

`DATABASE_URL`, `NATS_URL` and the standard `OTEL_*` names are accepted too, so the
same container image works with the names operators already use.
"""

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ONE_", extra="ignore")

    data_dir: Path = Field(Path(".data"), description="Where the embedded servers and credentials live.")
    database_url: str | None = Field(
        None,
        validation_alias=AliasChoices("ONE_DATABASE_URL", "DATABASE_URL"),
        description="Owner/admin connection: runs migrations. Unset = embedded Postgres.",
    )
    app_database_url: str | None = Field(
        None,
        description="Connection the services use (a non-superuser, non-owner role). "
        "Unset = the database_url with the user switched to `db_app_role`.",
    )
    db_app_role: str = "one_app"
    db_app_password: SecretStr | None = None
    db_pool_size: int = 10
    db_max_overflow: int = 10

    nats_url: str | None = Field(
        None,
        validation_alias=AliasChoices("ONE_NATS_URL", "NATS_URL"),
        description="Unset = embedded nats-server with JetStream.",
    )
    nats_user: str | None = None
    nats_password: SecretStr | None = None

    request_timeout: float = Field(10.0, description="Seconds a bus request waits for its reply.")
    handler_concurrency: int = Field(32, description="Messages one subscriber handles at once.")

    events_stream: str = "ONE_EVENTS"
    events_stream_replicas: int = 1
    events_duplicate_window: float = Field(
        600.0, description="Seconds JetStream remembers a Nats-Msg-Id; covers a relay restart."
    )

    outbox_poll_interval: float = 0.5
    outbox_batch_size: int = 200

    otel_service_name: str | None = Field(None, validation_alias=AliasChoices("ONE_OTEL_SERVICE_NAME", "OTEL_SERVICE_NAME"))
    otel_endpoint: str | None = Field(
        None, validation_alias=AliasChoices("ONE_OTEL_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
    )
    trace_sample_ratio: float = Field(0.1, ge=0.0, le=1.0, description="Head sampling for new traces.")

    log_level: str = "INFO"

    @property
    def runtime_file(self) -> Path:
        """Written by `one up`: where the running embedded servers listen."""
        return self.data_dir / "runtime.json"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
