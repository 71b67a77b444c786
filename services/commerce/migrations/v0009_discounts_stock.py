"""Discount codes (`commerce.discounts`) and stock held by open checkouts (`commerce.stock_reservations`), both RLS.

- A discount is org data keyed by its code, case-insensitively (`code_key` = lower(code), unique per org):
  a percentage (`percent_off`, 1-100) or a fixed amount (`amount_off` minor units in `currency`), valid
  from / to, at most `max_redemptions` (counted in `times_redeemed` by one conditional UPDATE at complete,
  so concurrent completes never redeem past the limit), a minimum items subtotal, and the products it is
  restricted to (empty: every product).
- A reservation is the quantity of a product a checkout session holds while it is ready for payment: `held`
  until the session's `expires_at` (an expired or canceled session holds nothing), `sold` once the session
  completed, until the product's stock in the graph has been taken down (then the row goes). A session
  counts every other session's reservations against the product's stock under a per-product advisory lock.
"""

from shared.runtime.db import tenant_org_rls

STATEMENTS = [
    """CREATE TABLE commerce.discounts (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        code text NOT NULL,
        code_key text NOT NULL,
        name text NOT NULL,
        kind text NOT NULL CHECK (kind IN ('percentage', 'fixed')),
        percent_off integer CHECK (percent_off BETWEEN 1 AND 100),
        amount_off bigint CHECK (amount_off > 0),
        currency text,
        starts_at timestamptz,
        ends_at timestamptz,
        max_redemptions integer CHECK (max_redemptions > 0),
        times_redeemed integer NOT NULL DEFAULT 0,
        min_subtotal bigint NOT NULL DEFAULT 0 CHECK (min_subtotal >= 0),
        product_ids jsonb NOT NULL DEFAULT '[]',
        active boolean NOT NULL DEFAULT true,
        created_by uuid NOT NULL,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        UNIQUE (org_id, code_key),
        CHECK ((kind = 'percentage' AND percent_off IS NOT NULL AND amount_off IS NULL)
            OR (kind = 'fixed' AND amount_off IS NOT NULL AND currency IS NOT NULL AND percent_off IS NULL)),
        CHECK (max_redemptions IS NULL OR times_redeemed <= max_redemptions)
    )""",
    *tenant_org_rls("commerce", "discounts"),
    """CREATE TABLE commerce.stock_reservations (
        org_id uuid NOT NULL,
        checkout_session_id text NOT NULL,
        product_id uuid NOT NULL,
        quantity integer NOT NULL CHECK (quantity > 0),
        state text NOT NULL CHECK (state IN ('held', 'sold')),
        expires_at timestamptz NOT NULL,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (org_id, checkout_session_id, product_id)
    )""",
    "CREATE INDEX stock_reservations_product ON commerce.stock_reservations (org_id, product_id)",
    *tenant_org_rls("commerce", "stock_reservations"),
]

_ORG_OR_WORKER = """(org_id = nullif(current_setting('app.org_id', true), '')::uuid
               OR current_setting('app.commerce_worker', true) = 'on')"""

STATEMENTS += [
    # A sale's graph side, done after the answer (checkout_settlement.py): queued by the pay transaction, run right
    # after it by the replica that answered, retried by every replica's loop (worker RLS, as the webhook loop's).
    """CREATE TABLE commerce.checkout_settlements (
        org_id uuid NOT NULL,
        checkout_session_id text NOT NULL,
        order_id text NOT NULL,
        actor_id uuid NOT NULL,
        payment_status text NOT NULL,
        details jsonb NOT NULL DEFAULT '{}',
        state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done')),
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz NOT NULL,
        claimed_until timestamptz,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (org_id, checkout_session_id)
    )""",
    "CREATE INDEX checkout_settlements_due ON commerce.checkout_settlements (next_attempt_at) WHERE state = 'pending'",
    "ALTER TABLE commerce.checkout_settlements ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE commerce.checkout_settlements FORCE ROW LEVEL SECURITY",
    f"CREATE POLICY org_or_worker ON commerce.checkout_settlements USING {_ORG_OR_WORKER} WITH CHECK {_ORG_OR_WORKER}",
]
