"""AP2, second part: checkout mandates, V1 mandates, the PSP charge, usage counters, the graph after the reply.

- `ap2_mandates`: `mandate_type` also `intent` / `cart` (V1 mandates, `version` 1, `signed` false when V1
  carries no verifiable signature); `graph_pending` marks a mandate whose `mandate` thing (and, for a
  closed one, its `fulfilled` connection) the graph sync loop still has to write (service_ap2_graph.py),
  `thing_id` is that thing once written, `graph_attempts` counts tries (a retried connection is looked up
  first, so it is never written twice).
- `ap2_open_mandates`: the uses of an open mandate at this merchant (`uses`, `spent` by currency,
  `last_used_at`) kept on the row a presentation locks, so locking it reads them (one statement); filled
  from the receipts already stored.
- `ap2_receipts`: `kind` payment or checkout (a checkout mandate's receipt, `checkout_receipt.json`);
  one of each per checkout; `charge_id` the PSP's charge a payment receipt was signed after.
- `ap2_checkouts`: `checked_out` once a checkout mandate accepted it (the payment mandate still pays it).
- `ap2_mandates`' policy also lets the graph sync loop (`app.commerce_worker = 'on'`, its own statements
  only) claim pending mandates of every org, as the webhook loop does (v0003).
"""

from services.commerce.migrations.v0003_acp_edge import _rls

STATEMENTS = [
    "DROP POLICY org_isolation ON commerce.ap2_mandates",
    *_rls("ap2_mandates"),
    "ALTER TABLE commerce.ap2_mandates DROP CONSTRAINT ap2_mandates_mandate_type_check",
    """ALTER TABLE commerce.ap2_mandates ADD CONSTRAINT ap2_mandates_mandate_type_check
        CHECK (mandate_type IN ('payment', 'checkout', 'intent', 'cart'))""",
    "ALTER TABLE commerce.ap2_mandates ADD COLUMN version int NOT NULL DEFAULT 2",
    "ALTER TABLE commerce.ap2_mandates ADD COLUMN signed boolean NOT NULL DEFAULT true",
    "ALTER TABLE commerce.ap2_mandates ADD COLUMN graph_pending boolean NOT NULL DEFAULT false",
    "ALTER TABLE commerce.ap2_mandates ADD COLUMN graph_attempts int NOT NULL DEFAULT 0",
    "ALTER TABLE commerce.ap2_mandates ADD COLUMN thing_id uuid",
    "ALTER TABLE commerce.ap2_mandates ADD COLUMN graph_claimed_until timestamptz",
    "ALTER TABLE commerce.ap2_mandates ADD COLUMN actor_id uuid",
    "ALTER TABLE commerce.ap2_mandates ADD COLUMN issuer text",
    "CREATE INDEX ap2_mandates_graph_pending ON commerce.ap2_mandates (created_at) WHERE graph_pending",
    "CREATE INDEX ap2_mandates_fulfills ON commerce.ap2_mandates (org_id, fulfills) WHERE fulfills IS NOT NULL",
    "ALTER TABLE commerce.ap2_open_mandates ADD COLUMN uses int NOT NULL DEFAULT 0",
    "ALTER TABLE commerce.ap2_open_mandates ADD COLUMN spent jsonb NOT NULL DEFAULT '{}'::jsonb",
    "ALTER TABLE commerce.ap2_open_mandates ADD COLUMN last_used_at timestamptz",
    """UPDATE commerce.ap2_open_mandates m SET uses = u.uses, spent = u.spent, last_used_at = u.last_used_at
        FROM (SELECT org_id, open_hash, sum(n)::int AS uses, jsonb_object_agg(currency, total) AS spent,
                     max(last_at) AS last_used_at
              FROM (SELECT org_id, open_hash, currency, count(*) AS n, sum(amount) AS total, max(created_at) AS last_at
                    FROM commerce.ap2_receipts GROUP BY org_id, open_hash, currency) per_currency
              GROUP BY org_id, open_hash) u
        WHERE m.org_id = u.org_id AND m.open_hash = u.open_hash""",
    "ALTER TABLE commerce.ap2_receipts ADD COLUMN kind text NOT NULL DEFAULT 'payment' "
    "CHECK (kind IN ('payment', 'checkout'))",
    "ALTER TABLE commerce.ap2_receipts ADD COLUMN charge_id text",
    "ALTER TABLE commerce.ap2_receipts ALTER COLUMN open_hash DROP NOT NULL",
    "ALTER TABLE commerce.ap2_receipts DROP CONSTRAINT ap2_receipts_checkout_id_key",
    "ALTER TABLE commerce.ap2_receipts ADD CONSTRAINT ap2_receipts_checkout_kind UNIQUE (checkout_id, kind)",
    "ALTER TABLE commerce.ap2_checkouts ADD COLUMN checked_out boolean NOT NULL DEFAULT false",
    "CREATE INDEX ap2_receipts_org_created ON commerce.ap2_receipts (org_id, created_at DESC)",
]
