"""The A2A tables (DDL in migrations/v0004_a2a_tasks.py) as SQLAlchemy Core, and the rows the repository returns."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from services.agents.rows import _Row

metadata = sa.MetaData(schema="agents")
_ts = sa.DateTime(timezone=True)

a2a_tasks = sa.Table(
    "a2a_tasks", metadata,
    sa.Column("id", sa.Uuid, primary_key=True), sa.Column("org_id", sa.Uuid), sa.Column("agent_id", sa.Uuid),
    sa.Column("agent_slug", sa.Text), sa.Column("run_id", sa.Uuid), sa.Column("context_id", sa.Uuid),
    sa.Column("state", sa.Text), sa.Column("caller_id", sa.Uuid), sa.Column("history", JSONB),
    sa.Column("metadata", JSONB), sa.Column("created_at", _ts), sa.Column("updated_at", _ts),
)
a2a_push_configs = sa.Table(
    "a2a_push_configs", metadata,
    sa.Column("org_id", sa.Uuid), sa.Column("task_id", sa.Uuid, primary_key=True),
    sa.Column("config_id", sa.Text, primary_key=True), sa.Column("url", sa.Text), sa.Column("token", sa.Text),
    sa.Column("authentication", JSONB), sa.Column("secrets_sealed", sa.LargeBinary), sa.Column("created_at", _ts),
)
a2a_callers = sa.Table(
    "a2a_callers", metadata,
    sa.Column("id", sa.Uuid, primary_key=True), sa.Column("org_id", sa.Uuid), sa.Column("caller_key", sa.Text),
    sa.Column("thing_id", sa.Uuid), sa.Column("created_at", _ts),
)
a2a_caller_agents = sa.Table(
    "a2a_caller_agents", metadata,
    sa.Column("org_id", sa.Uuid), sa.Column("caller_id", sa.Uuid, primary_key=True),
    sa.Column("agent_id", sa.Uuid, primary_key=True), sa.Column("connection_id", sa.Uuid),
    sa.Column("messages", sa.Integer),
)


@dataclass(slots=True)
class TaskRow(_Row):
    id: UUID
    org_id: UUID
    agent_id: UUID
    agent_slug: str
    run_id: UUID
    context_id: UUID
    state: str | None
    caller_id: UUID | None
    history: list[dict[str, Any]]
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class PushRow(_Row):
    org_id: UUID
    task_id: UUID
    config_id: str
    url: str
    token: str | None  # in clear only on rows stored before v0009, or once opened (`a2a_push.opened`)
    authentication: dict[str, Any] | None
    secrets_sealed: bytes | None
    created_at: datetime


@dataclass(slots=True)
class CallerLink(_Row):
    """An external caller and its tally with one agent."""

    caller_id: UUID
    thing_id: UUID | None
    connection_id: UUID | None
    messages: int
