"""ACP's edges: delegated-payment vault tokens, idempotency records, webhook endpoints and deliveries.

- `vault_tokens`: the test PSP's Delegate Payment vault (card display fields only, never the number or
  CVC). A token is spent by one conditional UPDATE (`charged_at IS NULL AND ...`), so two completes
  racing for it cannot both charge.
- `idempotency_keys`: one row per (org, caller, endpoint, key): the request's hash, `in_flight` until the
  response is stored, then the response replayed until `expires_at` (≥ 24 h). 5xx answers are never
  stored (the row is deleted so a retry runs again).
- `webhook_endpoints` (one per org; its signing secret sealed with commerce's secret, bound to the org)
  and `webhook_deliveries` / `webhook_attempts`: the outbound order events, claimed by a delivery loop
  with `FOR UPDATE SKIP LOCKED`, every attempt recorded.
- Row-Level Security confines a caller to its org; the sweeper and the delivery loop serve every org
  with `app.commerce_worker = 'on'` (set by their own statements only, as agents' job workers do).
"""

_ORG_OR_WORKER = """(org_id = nullif(current_setting('app.org_id', true), '')::uuid
               OR current_setting('app.commerce_worker', true) = 'on')"""


def _rls(table: str) -> list[str]:
    return [
        f"ALTER TABLE commerce.{table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE commerce.{table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY org_isolation ON commerce.{table} USING {_ORG_OR_WORKER} WITH CHECK {_ORG_OR_WORKER}",
    ]


STATEMENTS = [
    """CREATE TABLE commerce.vault_tokens (
        id text PRIMARY KEY,
        org_id uuid NOT NULL,
        provider text NOT NULL,
        reason text NOT NULL,
        max_amount bigint NOT NULL CHECK (max_amount >= 0),
        currency text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
        checkout_session_id text NOT NULL,
        merchant_id text NOT NULL,
        expires_at timestamptz NOT NULL,
        display jsonb NOT NULL DEFAULT '{}',
        metadata jsonb NOT NULL DEFAULT '{}',
        created_by uuid NOT NULL,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        charged_at timestamptz,
        charge_id text,
        charged_amount bigint,
        charge_key text,
        CHECK ((charged_at IS NULL) = (charge_id IS NULL))
    )""",
    "CREATE INDEX vault_tokens_by_session ON commerce.vault_tokens (org_id, checkout_session_id)",
    *_rls("vault_tokens"),
    """CREATE TABLE commerce.idempotency_keys (
        org_id uuid NOT NULL,
        caller text NOT NULL,
        endpoint text NOT NULL,
        key text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
        request_hash text NOT NULL,
        state text NOT NULL CHECK (state IN ('in_flight', 'completed')),
        lock_id uuid NOT NULL,
        locked_until timestamptz NOT NULL,
        status integer,
        headers jsonb,
        body text,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        expires_at timestamptz NOT NULL,
        PRIMARY KEY (org_id, caller, endpoint, key),
        CHECK ((state = 'completed') = (status IS NOT NULL AND body IS NOT NULL))
    )""",
    "CREATE INDEX idempotency_keys_expiry ON commerce.idempotency_keys (expires_at)",
    *_rls("idempotency_keys"),
    """CREATE TABLE commerce.webhook_endpoints (
        org_id uuid PRIMARY KEY,
        url text NOT NULL,
        secret_sealed bytea NOT NULL,
        created_by uuid NOT NULL,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )""",
    *_rls("webhook_endpoints"),
    """CREATE TABLE commerce.webhook_deliveries (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        event_type text NOT NULL,
        order_id text,
        checkout_session_id text,
        url text NOT NULL,
        body text NOT NULL,
        state text NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
        attempts integer NOT NULL DEFAULT 0,
        max_attempts integer NOT NULL CHECK (max_attempts >= 1),
        next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        claimed_until timestamptz,
        last_status integer,
        last_error text,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        delivered_at timestamptz
    )""",
    "CREATE INDEX webhook_deliveries_due ON commerce.webhook_deliveries (next_attempt_at) WHERE state = 'pending'",
    "CREATE INDEX webhook_deliveries_by_org ON commerce.webhook_deliveries (org_id, id DESC)",
    *_rls("webhook_deliveries"),
    """CREATE TABLE commerce.webhook_attempts (
        delivery_id uuid NOT NULL REFERENCES commerce.webhook_deliveries (id) ON DELETE CASCADE,
        attempt integer NOT NULL,
        org_id uuid NOT NULL,
        started_at timestamptz NOT NULL,
        duration_ms integer NOT NULL,
        status integer,
        error text,
        PRIMARY KEY (delivery_id, attempt)
    )""",
    *_rls("webhook_attempts"),
]
