"""Knowledge items, thingKnowledge links, label aliases and ingestion jobs, org-scoped with RLS.

- One `items` table for every knowledge type (the spec's consolidation). `embedding` is an
  untyped `vector` so items of any model fit; the HNSW index covers one dimension through an
  expression index (`embedding::vector(384)`, cosine) restricted to rows of that dimension.
  A query that orders by the same expression can use it; one that orders by the bare column
  is an exact scan (that is how small orgs are searched exactly).
- `vector_only` rows can never hold text: a CHECK says so, so no code path can store it.
- `tsv` is the lexical side of hybrid search (English stemming), kept by Postgres itself.
- A label's name is unique among the org's live labels; aliases live in their own table,
  keyed by (org, alias), so an alias cannot point at two labels.
- `ingest_jobs` is the debounced work queue: at most one queued job per thing. Like the outbox,
  it has no RLS: workers claim due jobs of every org (`FOR UPDATE SKIP LOCKED`) and then work
  inside the job's org; every read for a caller filters on the caller's org.
- Things live in the graph's schema: `thing_id` / `source_thing_id` are references by value
  (a service owns its schema), checked over the bus when they are written.
"""

from shared.runtime.db import tenant_org_rls

STATEMENTS = [
    """CREATE TABLE knowledge.items (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        knowledge_type text NOT NULL CHECK (knowledge_type IN ('label', 'document', 'chunk', 'vector_only')),
        name text,
        text text,
        text_hash text,
        embedding vector,
        embedding_model text,
        embedding_dim integer,
        source_thing_id uuid,
        source_thing_type text,
        source_field text,
        document_id uuid,
        chunk_index integer,
        chunk_start integer,
        chunk_end integer,
        token_count integer,
        chunk_overlap integer,
        labels text[] NOT NULL DEFAULT '{}',
        metadata jsonb NOT NULL DEFAULT '{}',
        source_hash text,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        archived_at timestamptz,
        deprecated_at timestamptz,
        deleted_at timestamptz,
        tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', coalesce(text, ''))) STORED,
        UNIQUE (org_id, id),
        CHECK (knowledge_type <> 'vector_only' OR text IS NULL),
        CHECK (knowledge_type <> 'label' OR name IS NOT NULL),
        CHECK ((embedding IS NULL) = (embedding_model IS NULL)),
        CHECK (embedding IS NULL OR embedding_dim = vector_dims(embedding))
    )""",
    """CREATE UNIQUE INDEX items_label_name ON knowledge.items (org_id, name)
        WHERE knowledge_type = 'label' AND deleted_at IS NULL""",
    "CREATE INDEX items_by_type ON knowledge.items (org_id, knowledge_type, id)",
    "CREATE INDEX items_by_source ON knowledge.items (org_id, source_thing_id, source_field)",
    "CREATE INDEX items_by_created ON knowledge.items (org_id, created_at)",
    """CREATE INDEX items_searchable ON knowledge.items (org_id, embedding_model)
        WHERE embedding IS NOT NULL AND deleted_at IS NULL AND archived_at IS NULL""",
    "CREATE INDEX items_labels ON knowledge.items USING gin (labels)",
    "CREATE INDEX items_tsv ON knowledge.items USING gin (tsv)",
    """CREATE INDEX items_embedding_384 ON knowledge.items
        USING hnsw ((embedding::vector(384)) vector_cosine_ops) WHERE embedding_dim = 384""",
    """CREATE TABLE knowledge.thing_knowledge (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        thing_id uuid NOT NULL,
        knowledge_id uuid NOT NULL,
        role text NOT NULL CHECK (role IN ('label', 'summary', 'chunk_of', 'caption', 'keyword')),
        metadata jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        FOREIGN KEY (org_id, knowledge_id) REFERENCES knowledge.items (org_id, id) ON DELETE CASCADE,
        UNIQUE (org_id, thing_id, knowledge_id, role)
    )""",
    "CREATE INDEX thing_knowledge_by_knowledge ON knowledge.thing_knowledge (org_id, knowledge_id)",
    """CREATE TABLE knowledge.label_aliases (
        org_id uuid NOT NULL,
        alias text NOT NULL,
        label_id uuid NOT NULL,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (org_id, alias),
        FOREIGN KEY (org_id, label_id) REFERENCES knowledge.items (org_id, id) ON DELETE CASCADE
    )""",
    """CREATE TABLE knowledge.ingest_jobs (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        thing_id uuid NOT NULL,
        action text NOT NULL CHECK (action IN ('ingest', 'purge')),
        fields text[],
        force boolean NOT NULL DEFAULT false,
        vector_only boolean NOT NULL DEFAULT false,
        trigger text NOT NULL,
        actor_id uuid,
        status text NOT NULL CHECK (status IN ('queued', 'running', 'done', 'skipped', 'failed')),
        not_before timestamptz NOT NULL DEFAULT clock_timestamp(),
        attempts integer NOT NULL DEFAULT 0,
        chunks integer,
        error text,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        finished_at timestamptz
    )""",
    """CREATE UNIQUE INDEX ingest_jobs_one_queued ON knowledge.ingest_jobs (org_id, thing_id)
        WHERE status = 'queued'""",
    "CREATE INDEX ingest_jobs_due ON knowledge.ingest_jobs (not_before) WHERE status = 'queued'",
    "CREATE INDEX ingest_jobs_by_org ON knowledge.ingest_jobs (org_id, status, created_at)",
    *tenant_org_rls("knowledge", "items"),
    *tenant_org_rls("knowledge", "thing_knowledge"),
    *tenant_org_rls("knowledge", "label_aliases"),
]
