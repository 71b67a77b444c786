"""One settings object per process, read from the environment (`ONE_` prefix).

`DATABASE_URL`, `NATS_URL` and the standard `OTEL_*` names are accepted too, so the
same container image works with the names operators already use.
"""

from functools import lru_cache
from pathlib import Path
from typing import Self

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """The fields every process shares; each service extends it in `services/<name>/settings.py`.

    `extra="forbid"`: a field passed that this class lacks (one that belongs to a service's
    settings) is an error, not silently dropped. Unknown `ONE_*` environment variables are
    still ignored. `populate_by_name`: fields with env aliases (`otel_endpoint`) accept their
    own name as a keyword, so `from_common` can pass every field on.
    """

    model_config = SettingsConfigDict(env_prefix="ONE_", extra="forbid", populate_by_name=True)

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
    db_pool_size: int = Field(20, description="Connections a process keeps open (and may use at once, with the "
                              "overflow); kept, not reopened: a connection opened under load costs a connect, a TLS "
                              "probe and its statements prepared again")
    db_max_overflow: int = Field(0, description="Connections opened beyond the pool under load, closed when returned")

    nats_url: str | None = Field(
        None,
        validation_alias=AliasChoices("ONE_NATS_URL", "NATS_URL"),
        description="Unset = embedded nats-server with JetStream.",
    )
    nats_user: str | None = None
    nats_password: SecretStr | None = None

    metrics_port: int = Field(0, ge=0, le=65535, description=(
        "Serve Prometheus metrics on this port (`/metrics`); 0 = not served. `one up` gives its children"
        " this port and the ones after it, in the order `one up` prints."))
    metrics_host: str = Field("0.0.0.0", description="The address the metrics port listens on.")

    request_timeout: float = Field(10.0, description="Seconds a bus request waits for its reply.")
    handler_concurrency: int = Field(32, description="Messages one subscriber handles at once.")
    handler_queue_limit: int = Field(1000, ge=0, description=(
        "Requests one subscriber lets wait for a free slot; past it the oldest waiting one is answered"
        " `unavailable` (reason `overloaded`, with `retry_after`) at once instead of timing out later."))

    events_stream: str = "ONE_EVENTS"
    events_stream_replicas: int = 1
    events_duplicate_window: float = Field(
        600.0, description="Seconds JetStream remembers a Nats-Msg-Id; covers a relay restart."
    )
    dead_letters_stream: str = Field("ONE_DEADLETTERS", description=(
        "The stream every consumer's dead letters go through (`one.deadletter.>`), so none is lost before the"
        " event log stores it; created by the event log."))

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

    @classmethod
    def from_common(cls, given: "Settings") -> Self:
        """This class's settings: the common fields' values from `given`, this class's own from the environment.

        `given` itself when it already is one, so a caller (a test) can set a service's own field.
        """
        if isinstance(given, cls):
            return given
        return cls(**given.model_dump(include=set(Settings.model_fields)))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
