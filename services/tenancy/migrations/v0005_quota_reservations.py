"""Quota reservations: units held for a caller's pending work, settled after it commits or expired.

A service that counts its writes against a quota (the graph's `things`) reserves the units
before its own transaction and settles the reservation after that transaction committed,
with the units it really used. Usage is `quotas.used` (settled) plus the live reservations
(unsettled, not expired): a caller that dies between the two never leaks a unit, its
reservation simply stops counting at `expires_at`. Settling is once per reservation (the
`settled_at` guard), so a retried or replayed settle never counts twice.
"""

_ORG = "nullif(current_setting('app.org_id', true), '')::uuid"

STATEMENTS = [
    """CREATE TABLE tenancy.quota_reservations (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        metric text NOT NULL,
        amount bigint NOT NULL CHECK (amount > 0),
        used bigint CHECK (used >= 0 AND used <= amount),
        expires_at timestamptz NOT NULL,
        settled_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        FOREIGN KEY (org_id, metric) REFERENCES tenancy.quotas (org_id, metric) ON DELETE CASCADE
    )""",
    "CREATE INDEX quota_reservations_live ON tenancy.quota_reservations (org_id, metric, expires_at)"
    " WHERE settled_at IS NULL",
    "ALTER TABLE tenancy.quota_reservations ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE tenancy.quota_reservations FORCE ROW LEVEL SECURITY",
    f"CREATE POLICY org_isolation ON tenancy.quota_reservations USING (org_id = {_ORG}) WITH CHECK (org_id = {_ORG})",
]
