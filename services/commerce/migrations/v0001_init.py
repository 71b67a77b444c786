"""The `commerce` schema starts with its outbox: every mutation's event leaves through it."""

from shared.runtime.outbox import outbox_ddl

STATEMENTS = outbox_ddl("commerce")
