"""Things and connections, org-scoped, with the spec's indexes and Row-Level Security.

- Connections reference things through `(org_id, id)`, so the database itself refuses a
  link between two organizations, whatever the code above it does.
- `version` is the optimistic-concurrency counter; every update bumps it.
- Name search uses `to_tsvector('simple', name)`: pg_trgm is not shipped by pgserver.
- Property filters use jsonpath, backed by a GIN index on `properties`.
"""

from shared.runtime.db import tenant_org_rls

STATEMENTS = [
    """CREATE TABLE graph.things (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        type text NOT NULL,
        name text NOT NULL CHECK (length(name) > 0),
        properties jsonb NOT NULL DEFAULT '{}',
        status text NOT NULL CHECK (status IN ('draft', 'active', 'published', 'inactive', 'archived')),
        version integer NOT NULL DEFAULT 1,
        idempotency_key text,
        request_hash text,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        deleted_at timestamptz,
        UNIQUE (org_id, id)
    )""",
    "CREATE UNIQUE INDEX things_idempotency ON graph.things (org_id, idempotency_key) WHERE idempotency_key IS NOT NULL",
    "CREATE INDEX things_org_type ON graph.things (org_id, type, id)",
    "CREATE INDEX things_org_status ON graph.things (org_id, status, id)",
    "CREATE INDEX things_org_created ON graph.things (org_id, created_at)",
    "CREATE INDEX things_name_search ON graph.things USING gin (to_tsvector('simple', name))",
    "CREATE INDEX things_properties ON graph.things USING gin (properties jsonb_path_ops)",
    """CREATE TABLE graph.connections (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        from_id uuid NOT NULL,
        to_id uuid NOT NULL,
        type text NOT NULL,
        metadata jsonb NOT NULL DEFAULT '{}',
        strength numeric CHECK (strength >= 0 AND strength <= 1),
        valid_from timestamptz NOT NULL DEFAULT clock_timestamp(),
        valid_to timestamptz,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        FOREIGN KEY (org_id, from_id) REFERENCES graph.things (org_id, id) ON DELETE CASCADE,
        FOREIGN KEY (org_id, to_id) REFERENCES graph.things (org_id, id) ON DELETE CASCADE,
        CHECK (valid_to IS NULL OR valid_to >= valid_from)
    )""",
    "CREATE INDEX connections_from_type ON graph.connections (org_id, from_id, type, id)",
    "CREATE INDEX connections_to_type ON graph.connections (org_id, to_id, type, id)",
    "CREATE INDEX connections_bidirectional ON graph.connections (org_id, from_id, to_id)",
    "CREATE INDEX connections_validity ON graph.connections (org_id, valid_from, valid_to)",
    *tenant_org_rls("graph", "things"),
    *tenant_org_rls("graph", "connections"),
]
