"""Durable jobs (`agents.jobs`): a Postgres queue claimed with `FOR UPDATE SKIP LOCKED` (README "Jobs").

- `due` orders what a worker claims: a queue's due jobs by priority, then time; `leases` finds the
  jobs of a worker that died (its lease passed); `by_org` serves the org's listings, newest first.
- An idempotency key is unique per org for as long as its job is kept.
- Row-Level Security confines a caller's transaction to its org. Workers claim the due jobs of every
  org: their transactions set `app.jobs_worker` (the queue's own statements, in repository_jobs.py),
  which the policy also admits, as the outbox and the ingestion queue are read by every replica.
- `NOTIFY agents_jobs` (sent by enqueue and retry, at commit) wakes every replica's dispatcher, so
  a scheduled job starts on time without polling.
"""

STATEMENTS = [
    """CREATE TABLE agents.jobs (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        queue text NOT NULL,
        kind text NOT NULL,
        payload jsonb NOT NULL DEFAULT '{}',
        priority integer NOT NULL DEFAULT 0,
        state text NOT NULL CHECK (state IN ('pending', 'claimed', 'running', 'completed', 'failed', 'dead',
                                             'cancelled')),
        run_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        max_attempts integer NOT NULL CHECK (max_attempts BETWEEN 1 AND 25),
        idempotency_key text,
        last_error text,
        result jsonb,
        enqueued_by uuid NOT NULL,
        claimed_by text,
        lease_until timestamptz,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        started_at timestamptz,
        finished_at timestamptz,
        CHECK ((state IN ('claimed', 'running')) = (claimed_by IS NOT NULL AND lease_until IS NOT NULL))
    )""",
    "CREATE UNIQUE INDEX jobs_idempotency ON agents.jobs (org_id, idempotency_key) WHERE idempotency_key IS NOT NULL",
    "CREATE INDEX jobs_due ON agents.jobs (queue, priority DESC, run_at, id) WHERE state IN ('pending', 'failed')",
    "CREATE INDEX jobs_next ON agents.jobs (queue, run_at) WHERE state IN ('pending', 'failed')",
    "CREATE INDEX jobs_leases ON agents.jobs (lease_until) WHERE state IN ('claimed', 'running')",
    "CREATE INDEX jobs_by_org ON agents.jobs (org_id, id DESC)",
    "ALTER TABLE agents.jobs ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE agents.jobs FORCE ROW LEVEL SECURITY",
    """CREATE POLICY org_isolation ON agents.jobs
        USING (org_id = nullif(current_setting('app.org_id', true), '')::uuid
               OR current_setting('app.jobs_worker', true) = 'on')
        WITH CHECK (org_id = nullif(current_setting('app.org_id', true), '')::uuid
                    OR current_setting('app.jobs_worker', true) = 'on')""",
]
