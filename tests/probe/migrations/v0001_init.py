"""An org-owned table with RLS, and the outbox."""

from shared.runtime.db import tenant_org_rls
from shared.runtime.outbox import outbox_ddl

STATEMENTS = [
    """CREATE TABLE probe.notes (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        body text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    )""",
    *tenant_org_rls("probe", "notes"),
    *outbox_ddl("probe"),
]
