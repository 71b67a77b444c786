"""One settings object per process, read from the environment (`ONE_` prefix).

`DATABASE_URL`, `NATS_URL` and the standard `OTEL_*` names are accepted too, so the
same container image works with the names operators already use.
"""

from functools import lru_cache
from pathlib import Path
from typing import Literal

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

    metrics_port: int = Field(0, ge=0, le=65535, description=(
        "Serve Prometheus metrics on this port (`/metrics`); 0 = not served. `one up` gives its children"
        " this port and the ones after it, in the order `one up` prints."))
    metrics_host: str = Field("0.0.0.0", description="The address the metrics port listens on.")

    request_timeout: float = Field(10.0, description="Seconds a bus request waits for its reply.")
    handler_concurrency: int = Field(32, description="Messages one subscriber handles at once.")

    events_stream: str = "ONE_EVENTS"
    events_stream_replicas: int = 1
    events_duplicate_window: float = Field(
        600.0, description="Seconds JetStream remembers a Nats-Msg-Id; covers a relay restart."
    )

    outbox_poll_interval: float = 0.5
    outbox_batch_size: int = 200

    eventlog_consumer: str = Field("eventlog-ingest", description="Durable JetStream consumer the event log ingests with.")
    eventlog_batch_size: int = Field(1000, description="Events fetched, inserted and acked together.")
    eventlog_fetch_wait: float = Field(0.05, description="Seconds an idle fetch waits: bounds the latency it adds.")
    eventlog_max_deliver: int = Field(20, description="Deliveries before a failing event goes to dead-letter.")
    eventlog_ack_wait: float = Field(30.0, description="Seconds JetStream waits for an ack before redelivering.")
    eventlog_max_ack_pending: int = Field(20000, description="Unacked events in flight across ingest replicas.")
    eventlog_retry_delay: float = Field(0.5, description="First NAK delay after a transient failure; doubles per delivery.")
    eventlog_retry_delay_max: float = Field(30.0, description="Longest NAK delay.")
    eventlog_hot_window_days: float = Field(90.0, description="Events younger than this stay in the hot table.")
    eventlog_archive_dir: Path | None = Field(None, description="Where archives go; unset = <data_dir>/archive/events.")
    eventlog_archive_chunk: int = Field(10000, description="Events per archive file (one transaction each).")
    eventlog_tail_max_wait: float = Field(20.0, description="Longest a tail long-poll waits for new events.")
    eventlog_query_max_limit: int = Field(1000, description="Most events one query page returns.")

    otel_service_name: str | None = Field(None, validation_alias=AliasChoices("ONE_OTEL_SERVICE_NAME", "OTEL_SERVICE_NAME"))
    otel_endpoint: str | None = Field(
        None, validation_alias=AliasChoices("ONE_OTEL_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
    )
    trace_sample_ratio: float = Field(0.1, ge=0.0, le=1.0, description="Head sampling for new traces.")

    log_level: str = "INFO"

    api_key_pepper: SecretStr | None = Field(
        None,
        description="Server-side secret mixed into every API key and invite token hash (HMAC-SHA256). "
        "Unset = generated once into `<data_dir>/tenancy/pepper`; set it explicitly when replicas don't share a data dir.",
    )
    key_cache_ttl: float = Field(2.0, ge=0.0, description="Seconds a verified API key is served from memory; bounds revocation delay.")
    invite_ttl: float = Field(7 * 86400.0, gt=0.0, description="Seconds an invitation stays valid.")
    email_verification_ttl: float = Field(86400.0, gt=0.0, description="Seconds an email verification token stays valid.")
    email_verification_per_hour: int = Field(5, ge=1, description="Verification emails one person may ask for per hour and org.")
    totp_issuer: str = Field("ONE", min_length=1, description="The issuer an authenticator app shows for a TOTP secret.")
    trial_days: int = Field(14, ge=0, description="Length of the trial of an organization created by signup.")
    platform_owner_email: str = Field("owner@one.local", description="The platform owner bootstrap creates.")

    smtp_host: str | None = Field(
        None, description="SMTP server the mailer delivers through. Unset = each mail is written to `<mail_dir>` as an .eml file."
    )
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = Field(True, description="Upgrade the connection with STARTTLS before logging in (port 587).")
    smtp_implicit_tls: bool = Field(False, description="TLS from the first byte (SMTPS, port 465); STARTTLS is then not used.")
    smtp_timeout: float = Field(20.0, gt=0, description="Seconds one SMTP connection or command may take.")
    mail_from: str = Field("ONE <no-reply@one.local>", description="The From header (and envelope sender) of every mail.")
    mail_dir: Path | None = Field(None, description="Where mails go without an SMTP host; unset = <data_dir>/mail.")
    mail_retries: int = Field(4, ge=0, description="Retries of a mail after a transient SMTP failure (refused connection, 4xx).")
    mail_retry_delay: float = Field(1.0, ge=0, description="Seconds before the first retry; doubles per retry.")
    mailer_concurrency: int = Field(8, ge=1, description="Mails one mailer replica delivers at once.")
    mailer_heartbeat_interval: float = Field(
        10.0, gt=0, description="Seconds between the mailer's NATS round trips that refresh its heartbeat file (probes)."
    )

    graph_things_quota: str | None = Field(
        "things",
        description="Tenancy quota metric each live thing counts against; an org without that quota is unlimited. "
        "Unset = no quota check (one bus round trip less per create).",
    )
    graph_max_depth: int = Field(6, ge=1, description="Deepest neighbour traversal a query may ask for.")
    graph_traversal_timeout_ms: int = Field(5000, ge=1, description="statement_timeout of one traversal query.")

    knowledge_embedder: Literal["local", "openai", "hashing"] = Field(
        "local",
        description="`local`: all-MiniLM-L6-v2 on the CPU (the `model` extra); `openai`: an OpenAI-compatible "
        "HTTP endpoint (`knowledge_openai_*`); `hashing`: deterministic feature hashing, for fast tests only.",
    )
    knowledge_openai_base_url: str = "https://api.openai.com/v1"
    knowledge_openai_api_key: SecretStr | None = None
    knowledge_openai_model: str = "text-embedding-3-small"
    knowledge_openai_dim: int | None = Field(None, ge=1, description="Asked of the endpoint (`dimensions`); unset = the model's own.")
    knowledge_openai_timeout: float = Field(30.0, gt=0)
    knowledge_embed_batch: int = Field(32, ge=1, le=2048, description="Texts per embedding call.")
    knowledge_embed_threads: int = Field(0, ge=0, description="torch CPU threads for the local model; 0 = torch's default.")
    knowledge_tokenizer: Path | None = Field(None, description="A tokenizer.json for chunk token counts; unset = the local model's.")
    knowledge_chunk_tokens: int = Field(800, ge=16, description="Target chunk window, in tokens.")
    knowledge_chunk_overlap: int = Field(200, ge=0, description="Tokens a chunk repeats from the previous one.")
    knowledge_ef_search: int = Field(
        200, ge=1, le=1000, description="hnsw.ef_search of a k-NN query: recall vs speed (100k clustered vectors: 100 gives ~94% recall@10, 200 ~96%)."
    )
    knowledge_exact_below: int = Field(
        5000, ge=0, description="An org with fewer matching vectors than this is searched exactly (no index)."
    )
    knowledge_rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant of hybrid search.")
    knowledge_weight_semantic: float = Field(1.0, ge=0)
    knowledge_weight_lexical: float = Field(1.0, ge=0)
    knowledge_weight_labels: float = Field(0.5, ge=0)
    knowledge_auto_ingest: bool = Field(True, description="Ingest things when the graph reports them created or changed.")
    knowledge_debounce_ms: int = Field(2000, ge=0, description="Quiet time after a thing's last change before it is (re)ingested.")
    knowledge_ingest_workers: int = Field(2, ge=1, description="Ingestion jobs run at once per replica.")
    knowledge_ingest_max_attempts: int = Field(5, ge=1)
    knowledge_archive_retention_days: float = Field(30.0, ge=0, description="Archived chunks older than this are purged by GC.")

    @property
    def eventlog_archive_path(self) -> Path:
        return self.eventlog_archive_dir or self.data_dir / "archive" / "events"

    @property
    def mail_path(self) -> Path:
        return self.mail_dir or self.data_dir / "mail"

    @property
    def runtime_file(self) -> Path:
        """Written by `one up`: where the running embedded servers listen."""
        return self.data_dir / "runtime.json"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
