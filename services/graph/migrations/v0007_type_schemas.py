"""Org thing-type property schemas (packs, plugins): one JSON Schema per org and ontology thing type.

`source` names the owner (`pack:tutoring`); `version` counts the schema's changes. Org-scoped with
Row-Level Security like every org-owned table of the graph.
"""

from shared.runtime.db import tenant_org_rls

STATEMENTS = [
    """CREATE TABLE graph.type_schemas (
        org_id uuid NOT NULL,
        thing_type text NOT NULL,
        properties_schema jsonb NOT NULL,
        source text NOT NULL,
        description text NOT NULL DEFAULT '',
        version integer NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (org_id, thing_type)
    )""",
    *tenant_org_rls("graph", "type_schemas"),
]
