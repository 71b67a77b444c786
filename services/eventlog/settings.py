"""The event log's own settings: the ingest consumer, retention and archives, query and tail bounds.

Same `ONE_` names as ever; the common ones (database, NATS, stream) come from the kernel `Settings`.
"""

from pathlib import Path

from pydantic import Field

from shared.kernel.settings import Settings


class EventlogSettings(Settings):
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

    @property
    def eventlog_archive_path(self) -> Path:
        return self.eventlog_archive_dir or self.data_dir / "archive" / "events"
