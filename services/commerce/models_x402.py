"""x402's replay store as SQLAlchemy Core tables (DDL in migrations/v0004_x402_settlements.py)."""

import sqlalchemy as sa

metadata = sa.MetaData(schema="commerce")
_TS = sa.DateTime(timezone=True)

x402_nonces = sa.Table(
    "x402_nonces", metadata,
    sa.Column("network", sa.Text, primary_key=True), sa.Column("asset", sa.Text, primary_key=True),
    sa.Column("payer", sa.Text, primary_key=True), sa.Column("nonce", sa.Text, primary_key=True),
    sa.Column("org_id", sa.Uuid), sa.Column("settlement_id", sa.Uuid), sa.Column("claimed_at", _TS),
)

x402_settlements = sa.Table(
    "x402_settlements", metadata,
    sa.Column("id", sa.Uuid, primary_key=True), sa.Column("org_id", sa.Uuid), sa.Column("network", sa.Text),
    sa.Column("asset", sa.Text), sa.Column("payer", sa.Text), sa.Column("nonce", sa.Text),
    sa.Column("amount", sa.Numeric(78, 0)), sa.Column("pay_to", sa.Text), sa.Column("resource", sa.Text),
    sa.Column("status", sa.Text), sa.Column("tx_hash", sa.Text), sa.Column("error_reason", sa.Text),
    sa.Column("payment_id", sa.Uuid), sa.Column("created_at", _TS), sa.Column("settled_at", _TS),
)
