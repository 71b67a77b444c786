"""`knowledge.nearest_384`: a k-NN search through the HNSW index in one statement.

A search through the index used to take three round trips (BEGIN with the tenant and
`hnsw.ef_search`, the query, COMMIT). Measured with per-process CPU accounting, those extra
trips (each a send, a wake-up and a reply on both sides) were a large share of the service's
cost per search. This function sets both settings for its own statement's (implicit)
transaction and runs the same query, so one round trip does it. It is SECURITY INVOKER: row
level security still applies to the application role, for the org the caller names.

`plan_cache_mode = force_custom_plan`: PL/pgSQL caches plans, and a generic plan cannot see how
large the org is; it could pick an exact scan of the org's rows over the index for an org that
has a hundred thousand. A custom plan is made per call (measured: no visible cost next to the
graph walk). Filters the caller does not use are passed as NULL.

The result columns are the items' columns without `embedding`, and `similarity`;
tests/knowledge/test_search.py checks they match `services.knowledge.models.ITEM_COLUMNS`.
"""

STATEMENTS = [
    """CREATE FUNCTION knowledge.nearest_384(
        p_org uuid, p_ef_search integer, p_model text, p_types text[], p_source_types text[],
        p_source_thing uuid, p_labels text[], p_vector vector, p_k integer)
    RETURNS TABLE (
        id uuid, org_id uuid, knowledge_type text, name text, text text, text_hash text, embedding_model text,
        embedding_dim integer, source_thing_id uuid, source_thing_type text, source_field text, document_id uuid,
        chunk_index integer, chunk_start integer, chunk_end integer, token_count integer, chunk_overlap integer,
        labels text[], metadata jsonb, source_hash text, created_at timestamptz, updated_at timestamptz,
        archived_at timestamptz, deprecated_at timestamptz, deleted_at timestamptz, similarity double precision)
    LANGUAGE plpgsql AS $$
    #variable_conflict use_column
    BEGIN
        PERFORM set_config('app.org_id', p_org::text, true), set_config('hnsw.ef_search', p_ef_search::text, true),
                set_config('plan_cache_mode', 'force_custom_plan', true);
        RETURN QUERY
        SELECT i.id, i.org_id, i.knowledge_type, i.name, i.text, i.text_hash, i.embedding_model, i.embedding_dim,
               i.source_thing_id, i.source_thing_type, i.source_field, i.document_id, i.chunk_index, i.chunk_start,
               i.chunk_end, i.token_count, i.chunk_overlap, i.labels, i.metadata, i.source_hash, i.created_at,
               i.updated_at, i.archived_at, i.deprecated_at, i.deleted_at,
               1 - (i.embedding::vector(384) <=> p_vector::vector(384))
        FROM knowledge.items i
        WHERE i.org_id = p_org AND i.embedding_model = p_model AND i.embedding_dim = 384
          AND i.embedding IS NOT NULL AND i.deleted_at IS NULL AND i.archived_at IS NULL
          AND i.knowledge_type = ANY(p_types)
          AND (p_source_types IS NULL OR i.source_thing_type = ANY(p_source_types))
          AND (p_source_thing IS NULL OR i.source_thing_id = p_source_thing)
          AND (p_labels IS NULL OR i.labels @> p_labels)
        ORDER BY i.embedding::vector(384) <=> p_vector::vector(384)
        LIMIT p_k;
    END $$""",
]
