"""Ingestion owns what it writes, a thing remembers how it was ingested, deleted labels free their aliases.

- `items.ingested`: true for the documents and chunks thing ingestion made from the thing's own
  text fields. Ingestion archives and replaces only those; an item added by hand for a thing
  (`knowledge.item.add` with a `source_thing_id`) is never touched by it. Rows written before
  this column existed are adopted by the one mark ingestion always left: a document of an
  inventory field whose metadata names the thing (`thingName`), and that document's chunks.
- `ingest_state`: one row per ingested thing. `vector_only` makes privacy sticky (a thing once
  ingested vector-only stays so for event-triggered ingests, until an explicit request asks for
  text again); `thing_version` is the newest version of the thing whose text was written, so a
  slower run that read an older version drops its result instead of overwriting newer chunks.
  Things whose live documents were written vector-only are remembered as such.
- `ingest_jobs.store_text`: an explicit request to turn vector-only ingestion back off.
- Aliases of deleted labels are removed (deleting a label left them behind, so the name could
  never be used as an alias again).

The backfills run as the tables' owner with FORCE ROW LEVEL SECURITY lifted for the statement
(an owner is otherwise subject to the tenant policy and would see no rows), then restored.
"""

from shared.runtime.db import tenant_org_rls

_INVENTORY = ("content", "text", "transcript", "recording.transcript", "description", "summary", "caption", "title",
              "html")

STATEMENTS = [
    "ALTER TABLE knowledge.items ADD COLUMN ingested boolean NOT NULL DEFAULT false",
    "ALTER TABLE knowledge.ingest_jobs ADD COLUMN store_text boolean NOT NULL DEFAULT false",
    """CREATE TABLE knowledge.ingest_state (
        org_id uuid NOT NULL,
        thing_id uuid NOT NULL,
        vector_only boolean NOT NULL DEFAULT false,
        thing_version integer,
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (org_id, thing_id)
    )""",
    "ALTER TABLE knowledge.items NO FORCE ROW LEVEL SECURITY",
    f"""UPDATE knowledge.items SET ingested = true
        WHERE knowledge_type = 'document' AND source_thing_id IS NOT NULL AND metadata ? 'thingName'
          AND source_field IN ({", ".join(f"'{field}'" for field in _INVENTORY)})""",
    """UPDATE knowledge.items c SET ingested = true FROM knowledge.items d
        WHERE d.org_id = c.org_id AND d.id = c.document_id AND d.ingested AND NOT c.ingested""",
    """INSERT INTO knowledge.ingest_state (org_id, thing_id, vector_only)
        SELECT DISTINCT org_id, source_thing_id, true FROM knowledge.items
        WHERE ingested AND knowledge_type = 'document' AND archived_at IS NULL AND deleted_at IS NULL
          AND metadata->>'vectorOnly' = 'true'""",
    "ALTER TABLE knowledge.items FORCE ROW LEVEL SECURITY",
    "ALTER TABLE knowledge.label_aliases NO FORCE ROW LEVEL SECURITY",
    """DELETE FROM knowledge.label_aliases a USING knowledge.items l
        WHERE l.org_id = a.org_id AND l.id = a.label_id AND l.deleted_at IS NOT NULL""",
    "ALTER TABLE knowledge.label_aliases FORCE ROW LEVEL SECURITY",
    *tenant_org_rls("knowledge", "ingest_state"),
]
