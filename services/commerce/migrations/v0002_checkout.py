"""ACP checkout: sessions, the orders they become, and every payment attempt, org-scoped with Row-Level Security.

- `checkout_sessions`: the id is ACP's (`cs_<uuid hex>`, its uuid in `uid` for events); `status` is one of the
  2026-04-17 enum; the buyer's inputs (items, buyer, fulfillment details and choices) are kept as given, the
  priced session as it was last answered (`body`), so a read needs no catalog call. `version` grows with every
  change and guards the compare-and-set of `complete`.
- `orders`: one per completed session (UNIQUE), numbered from one sequence (`order_number`).
- `payment_attempts`: every charge tried for a session, declined ones too (the reason kept).
"""

from shared.runtime.db import tenant_org_rls

STATUSES = ("incomplete", "not_ready_for_payment", "requires_escalation", "authentication_required",
            "ready_for_payment", "pending_approval", "complete_in_progress", "completed", "canceled", "in_progress",
            "expired")

STATEMENTS = [
    f"""CREATE TABLE commerce.checkout_sessions (
        id text PRIMARY KEY,
        uid uuid NOT NULL UNIQUE,
        org_id uuid NOT NULL,
        status text NOT NULL CHECK (status IN ({", ".join(f"'{s}'" for s in STATUSES)})),
        currency text NOT NULL CHECK (currency ~ '^[a-z]{{3}}$'),
        items jsonb NOT NULL,
        buyer jsonb,
        fulfillment_details jsonb,
        selected_fulfillment_options jsonb NOT NULL DEFAULT '[]',
        extras jsonb NOT NULL DEFAULT '{{}}',
        body jsonb NOT NULL,
        total bigint NOT NULL DEFAULT 0,
        order_id text,
        version integer NOT NULL DEFAULT 1,
        created_by uuid NOT NULL,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        expires_at timestamptz NOT NULL
    )""",
    "CREATE INDEX checkout_sessions_by_org ON commerce.checkout_sessions (org_id, created_at DESC, id)",
    "CREATE SEQUENCE commerce.order_numbers START 1000",
    """CREATE TABLE commerce.orders (
        id text PRIMARY KEY,
        org_id uuid NOT NULL,
        checkout_session_id text NOT NULL UNIQUE REFERENCES commerce.checkout_sessions (id),
        order_number bigint NOT NULL DEFAULT nextval('commerce.order_numbers'),
        status text NOT NULL,
        currency text NOT NULL,
        total bigint NOT NULL CHECK (total >= 0),
        provider text,
        charge_id text,
        payment_thing_id uuid,
        body jsonb NOT NULL,
        created_by uuid NOT NULL,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )""",
    "CREATE INDEX orders_by_org ON commerce.orders (org_id, created_at DESC)",
    """CREATE TABLE commerce.payment_attempts (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        checkout_session_id text NOT NULL REFERENCES commerce.checkout_sessions (id),
        provider text NOT NULL,
        outcome text NOT NULL CHECK (outcome IN ('succeeded', 'declined', 'deferred')),
        reason text,
        amount bigint NOT NULL,
        currency text NOT NULL,
        charge_id text,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )""",
    "CREATE INDEX payment_attempts_by_session ON commerce.payment_attempts (org_id, checkout_session_id)",
    *tenant_org_rls("commerce", "checkout_sessions"),
    *tenant_org_rls("commerce", "orders"),
    *tenant_org_rls("commerce", "payment_attempts"),
]
