"""HNSW indexes, and a `knowledge.nearest_<dim>` function each, for the common embedding sizes beyond 384.

v0002 indexed only 384 dimensions (the embedded model), so the vectors of the production
providers (OpenAI text-embedding-3-small and ada-002: 1536; common open models: 768 and 1024)
were always searched by an exact scan of the org. Each size now gets what 384 has: a partial
expression index restricted to rows of that dimension, and a copy of v0003's one-round-trip
search function (a query uses an expression index only when it casts to that exact type, so
each size needs its own statement).

pgvector indexes `vector` up to 2,000 dimensions (and the pgvector of the embedded default, 0.6,
has no `halfvec` for more): a larger model, such as text-embedding-3-large (3072), is searched
exactly unless it is asked for an indexed size (`ONE_KNOWLEDGE_OPENAI_DIM=1536`; OpenAI's
text-embedding-3 models shorten their vectors on request).
"""

SIZES = (768, 1024, 1536)


def _index(dim: int) -> str:
    return (f"CREATE INDEX items_embedding_{dim} ON knowledge.items"
            f" USING hnsw ((embedding::vector({dim})) vector_cosine_ops) WHERE embedding_dim = {dim}")


def _function(dim: int) -> str:
    """v0003's `nearest_384`, for another size (its docstring says why it is written this way)."""
    cast = f"vector({dim})"
    return f"""CREATE FUNCTION knowledge.nearest_{dim}(
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
               1 - (i.embedding::{cast} <=> p_vector::{cast})
        FROM knowledge.items i
        WHERE i.org_id = p_org AND i.embedding_model = p_model AND i.embedding_dim = {dim}
          AND i.embedding IS NOT NULL AND i.deleted_at IS NULL AND i.archived_at IS NULL
          AND i.knowledge_type = ANY(p_types)
          AND (p_source_types IS NULL OR i.source_thing_type = ANY(p_source_types))
          AND (p_source_thing IS NULL OR i.source_thing_id = p_source_thing)
          AND (p_labels IS NULL OR i.labels @> p_labels)
        ORDER BY i.embedding::{cast} <=> p_vector::{cast}
        LIMIT p_k;
    END $$"""


STATEMENTS = [statement for dim in SIZES for statement in (_index(dim), _function(dim))]
