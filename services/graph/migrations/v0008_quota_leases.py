"""Quota leases: a replica holds a block of `things` units per org and counts each create against it locally.

`quota_pending` held one row per create's reservation; a lease serves many creates, so a row is now
one create's use of a lease (`id`), several per `reservation_id`, and carries the lease's expiry in
tenancy (`expires_at`): once that has passed, no replica adds to the lease any more, so whichever
replica finds the rows then may sum and settle them (the holder settles its own leases before that).
"""

STATEMENTS = [
    "ALTER TABLE graph.quota_pending DROP CONSTRAINT quota_pending_pkey",
    "ALTER TABLE graph.quota_pending ADD COLUMN id uuid NOT NULL DEFAULT gen_random_uuid()",
    "ALTER TABLE graph.quota_pending ADD PRIMARY KEY (id)",
    "ALTER TABLE graph.quota_pending ADD COLUMN expires_at timestamptz NOT NULL DEFAULT clock_timestamp()",
    "CREATE INDEX quota_pending_lease ON graph.quota_pending (reservation_id)",
    "CREATE INDEX quota_pending_expiry ON graph.quota_pending (expires_at)",
]
