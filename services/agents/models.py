"""The `agents` schema as SQLAlchemy Core tables (DDL lives in migrations/); replies carry shared.contracts.agents."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

metadata = sa.MetaData(schema="agents")
_TS = sa.DateTime(timezone=True)

agents = sa.Table(
    "agents", metadata,
    sa.Column("id", sa.Uuid, primary_key=True), sa.Column("org_id", sa.Uuid), sa.Column("slug", sa.Text),
    sa.Column("name", sa.Text), sa.Column("type", sa.Text), sa.Column("description", sa.Text),
    sa.Column("status", sa.Text), sa.Column("prompts", ARRAY(sa.Uuid)), sa.Column("created_by", sa.Uuid),
    sa.Column("created_at", _TS), sa.Column("updated_at", _TS), sa.Column("archived_at", _TS),
)

agent_configs = sa.Table(
    "agent_configs", metadata,
    sa.Column("id", sa.Uuid, primary_key=True), sa.Column("org_id", sa.Uuid), sa.Column("agent_id", sa.Uuid),
    sa.Column("environment", sa.Text), sa.Column("version", sa.Integer), sa.Column("config", JSONB),
    sa.Column("created_by", sa.Uuid), sa.Column("created_at", _TS),
)

prompts = sa.Table(
    "prompts", metadata,
    sa.Column("id", sa.Uuid, primary_key=True), sa.Column("org_id", sa.Uuid), sa.Column("name", sa.Text),
    sa.Column("step", sa.Text), sa.Column("template", sa.Text), sa.Column("variables", ARRAY(sa.Text)),
    sa.Column("description", sa.Text), sa.Column("tags", ARRAY(sa.Text)), sa.Column("status", sa.Text),
    sa.Column("version", sa.Integer), sa.Column("created_at", _TS), sa.Column("updated_at", _TS),
)

conversations = sa.Table(
    "conversations", metadata,
    sa.Column("id", sa.Uuid, primary_key=True), sa.Column("org_id", sa.Uuid), sa.Column("title", sa.Text),
    sa.Column("status", sa.Text), sa.Column("external_thread_id", sa.Text), sa.Column("tags", ARRAY(sa.Text)),
    sa.Column("next_seq", sa.Integer), sa.Column("last_message_at", _TS), sa.Column("created_by", sa.Uuid),
    sa.Column("created_at", _TS), sa.Column("updated_at", _TS),
)

participants = sa.Table(
    "participants", metadata,
    sa.Column("id", sa.Uuid, primary_key=True), sa.Column("org_id", sa.Uuid), sa.Column("conversation_id", sa.Uuid),
    sa.Column("kind", sa.Text), sa.Column("member_id", sa.Uuid), sa.Column("status", sa.Text),
    sa.Column("added_at", _TS), sa.Column("removed_at", _TS),
)

messages = sa.Table(
    "messages", metadata,
    sa.Column("id", sa.Uuid, primary_key=True), sa.Column("org_id", sa.Uuid), sa.Column("conversation_id", sa.Uuid),
    sa.Column("seq", sa.Integer), sa.Column("role", sa.Text), sa.Column("author_kind", sa.Text),
    sa.Column("author_id", sa.Uuid), sa.Column("content", sa.Text), sa.Column("tool_calls", JSONB),
    sa.Column("tool_call_id", sa.Text), sa.Column("step", sa.Text), sa.Column("tags", ARRAY(sa.Text)),
    sa.Column("attachments", JSONB), sa.Column("run_id", sa.Uuid), sa.Column("created_at", _TS),
)

runs = sa.Table(
    "runs", metadata,
    sa.Column("id", sa.Uuid, primary_key=True), sa.Column("org_id", sa.Uuid), sa.Column("agent_id", sa.Uuid),
    sa.Column("agent_slug", sa.Text), sa.Column("conversation_id", sa.Uuid), sa.Column("environment", sa.Text),
    sa.Column("config_version", sa.Integer), sa.Column("status", sa.Text), sa.Column("model", sa.Text),
    sa.Column("iterations", sa.Integer), sa.Column("answer", sa.Text), sa.Column("error", JSONB),
    sa.Column("citations", JSONB), sa.Column("input_tokens", sa.Integer), sa.Column("output_tokens", sa.Integer),
    sa.Column("cost", sa.Float), sa.Column("latency_ms", sa.Integer), sa.Column("parent_run_id", sa.Uuid),
    sa.Column("depth", sa.Integer), sa.Column("chain", ARRAY(sa.Uuid)), sa.Column("resumed", sa.Integer),
    sa.Column("actor_id", sa.Uuid), sa.Column("auth", JSONB), sa.Column("request", JSONB),
    sa.Column("created_at", _TS), sa.Column("finished_at", _TS), sa.Column("waiting", JSONB),
)

run_steps = sa.Table(
    "run_steps", metadata,
    sa.Column("org_id", sa.Uuid), sa.Column("run_id", sa.Uuid, primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True), sa.Column("kind", sa.Text), sa.Column("iteration", sa.Integer),
    sa.Column("body", JSONB), sa.Column("created_at", _TS),
)

run_leases = sa.Table(
    "run_leases", metadata,
    sa.Column("run_id", sa.Uuid, primary_key=True), sa.Column("org_id", sa.Uuid), sa.Column("owner", sa.Text),
    sa.Column("expires_at", _TS), sa.Column("takeovers", sa.Integer),
)
