"""External agents' tables as SQLAlchemy Core (DDL in migrations/v0005_external_agents.py) and their row."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from services.agents.rows import _Row

metadata = sa.MetaData(schema="agents")
_TS = sa.DateTime(timezone=True)

external_agents = sa.Table(
    "external_agents", metadata,
    sa.Column("id", sa.Uuid, primary_key=True), sa.Column("org_id", sa.Uuid), sa.Column("slug", sa.Text),
    sa.Column("name", sa.Text), sa.Column("description", sa.Text), sa.Column("card_url", sa.Text),
    sa.Column("card", JSONB), sa.Column("provider", sa.Text), sa.Column("streaming", sa.Boolean),
    sa.Column("credential", sa.Text), sa.Column("credential_sealed", sa.LargeBinary),
    sa.Column("credential_hint", sa.Text), sa.Column("timeout", sa.Float), sa.Column("status", sa.Text),
    sa.Column("messages_sent", sa.Integer), sa.Column("messages_received", sa.Integer),
    sa.Column("last_used_at", _TS), sa.Column("resolved_at", _TS), sa.Column("created_by", sa.Uuid),
    sa.Column("created_at", _TS), sa.Column("updated_at", _TS), sa.Column("archived_at", _TS),
)

external_exchanges = sa.Table(
    "external_exchanges", metadata,
    sa.Column("org_id", sa.Uuid, primary_key=True), sa.Column("agent_id", sa.Uuid, primary_key=True),
    sa.Column("external_id", sa.Uuid, primary_key=True), sa.Column("messages", sa.Integer),
    sa.Column("connection_id", sa.Uuid),
)


@dataclass(slots=True)
class ExternalAgentRow(_Row):
    id: UUID
    org_id: UUID
    slug: str
    name: str
    description: str
    card_url: str
    card: dict[str, Any]
    provider: str
    streaming: bool
    credential: str | None  # only a credential stored before it was sealed (v0009): sealed at its next use
    credential_sealed: bytes | None
    credential_hint: str | None
    timeout: float
    status: str
    messages_sent: int
    messages_received: int
    last_used_at: datetime | None
    resolved_at: datetime
    created_by: UUID
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None

    @property
    def type(self) -> str:
        """The graph thing's type (delegation treats internal and external targets alike)."""
        return "external_agent"
