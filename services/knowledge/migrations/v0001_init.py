"""The `knowledge` schema starts with its outbox, and needs pgvector from the first day."""

from shared.runtime.outbox import outbox_ddl

STATEMENTS = ["CREATE EXTENSION IF NOT EXISTS vector", *outbox_ddl("knowledge")]
