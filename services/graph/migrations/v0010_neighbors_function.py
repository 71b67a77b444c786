"""A traversal in one round trip: `graph.neighbors(...)` sets the tenant itself, then walks, so a caller whose role
has no scope rule runs it as a lone statement (`Database.fetch_alone`: no BEGIN, no COMMIT) instead of in a
transaction of three round trips. A scope rule is SQL made per role, so a scoped caller still walks with the
statement `repository._neighbors_statement` builds; `tests/graph/test_neighbors_paths.py` checks that both give
the same things at the same depths.

The columns are named, not `t.*`, in `rows.ThingRow`'s order: a column added to `graph.things` later does not change
what the function returns. SECURITY INVOKER (the default): row-level security applies to the caller as it would to
the statement, and the tenant it sets is the one the caller could have set at BEGIN.
"""

STATEMENTS = [
    """CREATE FUNCTION graph.neighbors(
        org uuid, start_id uuid, max_depth integer, max_rows integer, direction text, link_types text[], as_of timestamptz
    ) RETURNS TABLE (
        id uuid, org_id uuid, type text, name text, properties jsonb, status text, version integer,
        idempotency_key text, request_hash text, created_at timestamptz, updated_at timestamptz,
        deleted_at timestamptz, created_by uuid, reached_depth integer
    ) LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM set_config('app.org_id', org::text, true);
        RETURN QUERY
        WITH RECURSIVE walk(id, depth, path) AS (
            SELECT start_id, 0, ARRAY[start_id]
          UNION ALL
            SELECT step.next_id, w.depth + 1, w.path || step.next_id
            FROM walk w
            CROSS JOIN LATERAL (
                SELECT c.to_id AS next_id FROM graph.connections c
                JOIN graph.things live ON live.org_id = c.org_id AND live.id = c.to_id AND live.deleted_at IS NULL
                WHERE direction <> 'in' AND c.org_id = org AND c.from_id = w.id
                  AND (link_types IS NULL OR c.type = ANY(link_types))
                  AND (as_of IS NULL OR (c.valid_from <= as_of AND (c.valid_to IS NULL OR c.valid_to > as_of)))
              UNION ALL
                SELECT c.from_id FROM graph.connections c
                JOIN graph.things live ON live.org_id = c.org_id AND live.id = c.from_id AND live.deleted_at IS NULL
                WHERE direction <> 'out' AND c.org_id = org AND c.to_id = w.id
                  AND (link_types IS NULL OR c.type = ANY(link_types))
                  AND (as_of IS NULL OR (c.valid_from <= as_of AND (c.valid_to IS NULL OR c.valid_to > as_of)))
            ) step
            WHERE w.depth < max_depth AND step.next_id <> ALL(w.path)
        )
        SELECT t.id, t.org_id, t.type, t.name, t.properties, t.status, t.version, t.idempotency_key,
               t.request_hash, t.created_at, t.updated_at, t.deleted_at, t.created_by, reached.depth
        FROM (SELECT walk.id, min(walk.depth) AS depth FROM walk GROUP BY walk.id) reached
        JOIN graph.things t ON t.org_id = org AND t.id = reached.id
        ORDER BY reached.depth, t.id
        LIMIT max_rows + 1;
    END $$""",
]
