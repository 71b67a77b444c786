"""Who created a thing (`created_by`: the request's actor), so a scope rule's `own` admits what an actor created
without a `created_by` connection per create. Existing things keep NULL (their creator was not recorded)."""

STATEMENTS = [
    "ALTER TABLE graph.things ADD COLUMN created_by uuid",
    "CREATE INDEX things_created_by ON graph.things (org_id, created_by) WHERE created_by IS NOT NULL",
]
