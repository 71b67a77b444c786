"""The `graph` schema as SQLAlchemy Core tables (DDL lives in migrations/) and the read models.

Read models use the spec's field names in snake_case (`fromThingId` -> `from_id`,
`validFrom` -> `valid_from`); `properties` and `metadata` keep the spec's camelCase keys.
"""

from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.dialects.postgresql import JSONB

from shared.kernel.ontology import ConnectionType, ThingStatus, ThingType

metadata = sa.MetaData(schema="graph")

things = sa.Table(
    "things", metadata,
    sa.Column("id", sa.Uuid, primary_key=True), sa.Column("org_id", sa.Uuid),
    sa.Column("type", sa.Text), sa.Column("name", sa.Text), sa.Column("properties", JSONB),
    sa.Column("status", sa.Text), sa.Column("version", sa.Integer),
    sa.Column("idempotency_key", sa.Text), sa.Column("request_hash", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True)), sa.Column("updated_at", sa.DateTime(timezone=True)),
    sa.Column("deleted_at", sa.DateTime(timezone=True)),
)

connections = sa.Table(
    "connections", metadata,
    sa.Column("id", sa.Uuid, primary_key=True), sa.Column("org_id", sa.Uuid),
    sa.Column("from_id", sa.Uuid), sa.Column("to_id", sa.Uuid), sa.Column("type", sa.Text),
    sa.Column("metadata", JSONB), sa.Column("strength", sa.Numeric),
    sa.Column("valid_from", sa.DateTime(timezone=True)), sa.Column("valid_to", sa.DateTime(timezone=True)),
    sa.Column("created_at", sa.DateTime(timezone=True)), sa.Column("updated_at", sa.DateTime(timezone=True)),
)


class Thing(BaseModel):
    """A thing as replies carry it: secrets in `properties` are masked."""

    id: UUID
    type: ThingType
    name: str
    properties: dict[str, Any]
    status: ThingStatus
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None


class Connection(BaseModel):
    id: UUID
    from_id: UUID
    to_id: UUID
    type: ConnectionType
    metadata: dict[str, Any]
    strength: float | None = None
    valid_from: datetime
    valid_to: datetime | None = None
    created_at: datetime
    updated_at: datetime


class Neighbor(BaseModel):
    """A thing reached by a traversal, with the fewest hops it took."""

    thing: Thing
    depth: int
