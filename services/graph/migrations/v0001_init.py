"""The `graph` schema starts with its outbox: every mutation's event leaves through it."""

from shared.outbox import outbox_ddl

STATEMENTS = outbox_ddl("graph")
