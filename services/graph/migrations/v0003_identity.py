"""People in every org they belong to, and the things quota's pending settlements.

- A person is a thing in each organization they are a member of, with the person's id (tenancy's
  id) in all of them: a thing's key becomes `(org_id, id)` (the unique constraint the connections'
  foreign keys reference already), no longer `id` alone. Every statement filters on the org anyway.
- `quota_pending`: a create's quota reservation, written in the create's own transaction, so a
  reservation whose things committed is settled even if the graph died before it could say so
  (the settler retries these rows at start and then periodically). A queue of the service's own,
  read across orgs by the settler, like knowledge's job queue: no Row-Level Security.
"""

STATEMENTS = [
    "ALTER TABLE graph.things DROP CONSTRAINT things_pkey",
    """CREATE TABLE graph.quota_pending (
        reservation_id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        actor_id uuid,
        used integer NOT NULL CHECK (used >= 0),
        created_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )""",
    "CREATE INDEX quota_pending_age ON graph.quota_pending (created_at)",
]
