"""The `graph` schema as SQLAlchemy Core tables (DDL lives in migrations/).

The read models replies carry (`Thing`, `Connection`, `Neighbor`) are the graph's public face,
in `shared.contracts.graph`.
"""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

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


quota_pending = sa.Table(
    "quota_pending", metadata,
    sa.Column("reservation_id", sa.Uuid, primary_key=True), sa.Column("org_id", sa.Uuid),
    sa.Column("actor_id", sa.Uuid), sa.Column("used", sa.Integer), sa.Column("created_at", sa.DateTime(timezone=True)),
)
