"""ACP checkout's tables in schema `commerce` as SQLAlchemy Core (DDL in migrations/v0002_checkout.py), and its rows."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData(schema="commerce")
_TS = sa.DateTime(timezone=True)

checkout_sessions = sa.Table(
    "checkout_sessions", metadata,
    sa.Column("id", sa.Text, primary_key=True), sa.Column("uid", sa.Uuid), sa.Column("org_id", sa.Uuid),
    sa.Column("status", sa.Text), sa.Column("currency", sa.Text), sa.Column("items", JSONB),
    sa.Column("buyer", JSONB), sa.Column("fulfillment_details", JSONB), sa.Column("selected_fulfillment_options", JSONB),
    sa.Column("extras", JSONB), sa.Column("body", JSONB), sa.Column("total", sa.BigInteger),
    sa.Column("order_id", sa.Text), sa.Column("version", sa.Integer), sa.Column("created_by", sa.Uuid),
    sa.Column("created_at", _TS), sa.Column("updated_at", _TS), sa.Column("expires_at", _TS),
)

orders = sa.Table(
    "orders", metadata,
    sa.Column("id", sa.Text, primary_key=True), sa.Column("org_id", sa.Uuid), sa.Column("checkout_session_id", sa.Text),
    sa.Column("order_number", sa.BigInteger), sa.Column("status", sa.Text), sa.Column("currency", sa.Text),
    sa.Column("total", sa.BigInteger), sa.Column("provider", sa.Text), sa.Column("charge_id", sa.Text),
    sa.Column("payment_thing_id", sa.Uuid), sa.Column("body", JSONB), sa.Column("created_by", sa.Uuid),
    sa.Column("created_at", _TS), sa.Column("updated_at", _TS),
)

payment_attempts = sa.Table(
    "payment_attempts", metadata,
    sa.Column("id", sa.Uuid, primary_key=True), sa.Column("org_id", sa.Uuid),
    sa.Column("checkout_session_id", sa.Text), sa.Column("provider", sa.Text), sa.Column("outcome", sa.Text),
    sa.Column("reason", sa.Text), sa.Column("amount", sa.BigInteger), sa.Column("currency", sa.Text),
    sa.Column("charge_id", sa.Text), sa.Column("created_at", _TS),
)


@dataclass(slots=True)
class SessionRow:
    """A stored checkout session, in the table's column order."""

    id: str
    uid: UUID
    org_id: UUID
    status: str
    currency: str
    items: list[dict[str, Any]]
    buyer: dict[str, Any] | None
    fulfillment_details: dict[str, Any] | None
    selected_fulfillment_options: list[dict[str, Any]]
    extras: dict[str, Any]
    body: dict[str, Any]
    total: int
    order_id: str | None
    version: int
    created_by: UUID
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
