"""The plugin registry's and plugin installs' tables as SQLAlchemy Core (DDL in migrations/v0007_plugins.py)."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from services.agents.rows import _Row

metadata = sa.MetaData(schema="agents")
_TS = sa.DateTime(timezone=True)

plugins = sa.Table(
    "plugins", metadata,
    sa.Column("name", sa.Text, primary_key=True), sa.Column("id", sa.Uuid), sa.Column("org_id", sa.Uuid),
    sa.Column("version", sa.Text), sa.Column("manifest", JSONB), sa.Column("installable", sa.Boolean),
    sa.Column("imported_at", _TS),
)

plugin_installs = sa.Table(
    "plugin_installs", metadata,
    sa.Column("id", sa.Uuid, primary_key=True), sa.Column("org_id", sa.Uuid), sa.Column("plugin", sa.Text),
    sa.Column("version", sa.Text), sa.Column("status", sa.Text), sa.Column("settings", JSONB),
    sa.Column("secrets_set", ARRAY(sa.Text)), sa.Column("secrets_sealed", sa.LargeBinary),
    sa.Column("dependencies", ARRAY(sa.Text)), sa.Column("explicit", sa.Boolean),
    sa.Column("executions", sa.Integer), sa.Column("consecutive_failures", sa.Integer),
    sa.Column("suspended_reason", sa.Text), sa.Column("prompt_ids", ARRAY(sa.Uuid)),
    sa.Column("created_by", sa.Uuid), sa.Column("created_at", _TS), sa.Column("updated_at", _TS),
)


@dataclass(slots=True)
class PluginRow(_Row):
    name: str
    id: UUID
    org_id: UUID
    version: str
    manifest: dict[str, Any]
    installable: bool
    imported_at: datetime


@dataclass(slots=True)
class InstallRow(_Row):
    id: UUID
    org_id: UUID
    plugin: str
    version: str
    status: str
    settings: dict[str, Any]
    secrets_set: list[str]
    secrets_sealed: bytes | None
    dependencies: list[str]
    explicit: bool
    executions: int
    consecutive_failures: int
    suspended_reason: str | None
    prompt_ids: list[UUID]
    created_by: UUID
    created_at: datetime
    updated_at: datetime
