"""Access rules: field masks and scope rules, per organization and role (shared/contracts/graph/access.py).

A rule's id is derived from its natural key (the service computes it), so `set` is an upsert on the
primary key and installing the same rules twice (a pack) writes nothing new. Both tables are read
whole per org into each replica's cache (services/graph/access.py): an index on `org_id` serves that.
"""

from shared.runtime.db import tenant_org_rls

STATEMENTS = [
    """CREATE TABLE graph.field_masks (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        role text NOT NULL,
        thing_type text NOT NULL,
        field text NOT NULL,
        mode text NOT NULL CHECK (mode IN ('mask', 'redact', 'allow')),
        priority integer NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )""",
    "CREATE INDEX field_masks_org ON graph.field_masks (org_id, role)",
    """CREATE TABLE graph.scope_rules (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        role text NOT NULL,
        thing_type text NOT NULL,
        rule text NOT NULL CHECK (rule IN ('own', 'connected', 'all')),
        connection_type text,
        effect text NOT NULL CHECK (effect IN ('allow', 'deny')),
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        CHECK ((rule = 'connected') = (connection_type IS NOT NULL))
    )""",
    "CREATE INDEX scope_rules_org ON graph.scope_rules (org_id, role)",
    *tenant_org_rls("graph", "field_masks"),
    *tenant_org_rls("graph", "scope_rules"),
]
