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
    sa.Column("deleted_at", sa.DateTime(timezone=True)), sa.Column("created_by", sa.Uuid),
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
    sa.Column("id", sa.Uuid, primary_key=True, server_default=sa.func.gen_random_uuid()),
    sa.Column("reservation_id", sa.Uuid), sa.Column("org_id", sa.Uuid),
    sa.Column("actor_id", sa.Uuid), sa.Column("used", sa.Integer), sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("expires_at", sa.DateTime(timezone=True)),
)

type_schemas = sa.Table(
    "type_schemas", metadata,
    sa.Column("org_id", sa.Uuid, primary_key=True), sa.Column("thing_type", sa.Text, primary_key=True),
    sa.Column("properties_schema", JSONB), sa.Column("source", sa.Text), sa.Column("description", sa.Text),
    sa.Column("version", sa.Integer), sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
)
"""One JSON Schema per org and thing type (v0007): what the org's things of that type must satisfy."""

field_masks = sa.Table(
    "field_masks", metadata,
    sa.Column("id", sa.Uuid, primary_key=True), sa.Column("org_id", sa.Uuid), sa.Column("role", sa.Text),
    sa.Column("thing_type", sa.Text), sa.Column("field", sa.Text), sa.Column("mode", sa.Text),
    sa.Column("priority", sa.Integer), sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
)
scope_rules = sa.Table(
    "scope_rules", metadata,
    sa.Column("id", sa.Uuid, primary_key=True), sa.Column("org_id", sa.Uuid), sa.Column("role", sa.Text),
    sa.Column("thing_type", sa.Text), sa.Column("rule", sa.Text), sa.Column("connection_type", sa.Text),
    sa.Column("effect", sa.Text), sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
)
"""Access rules per org and role (v0004, services/graph/access.py)."""
