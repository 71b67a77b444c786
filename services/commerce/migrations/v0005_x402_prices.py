"""x402 prices (`commerce.x402_prices`, org-scoped with RLS) and the directory of orgs that sell (`x402_sellers`).

- A price is keyed by (org, resource): one price per resource, replaced by a new `set`.
- `amount` is in the asset's atomic units (bigint: 9.2e18 units of a 6-decimal token is far beyond any price).
- `x402_sellers` maps an org's slug (immutable in tenancy, and public: it is in the paid URL) to its id, so a
  keyless lookup can find the org before it opens the org's transaction; like the outbox it has no RLS and
  holds nothing but that pair. A row is written (or kept) whenever the org sets a price.
"""

from shared.runtime.db import tenant_org_rls

STATEMENTS = [
    """CREATE TABLE commerce.x402_sellers (
        org_id uuid PRIMARY KEY,
        slug text NOT NULL UNIQUE
    )""",
    """CREATE TABLE commerce.x402_prices (
        org_id uuid NOT NULL,
        resource text NOT NULL,
        amount bigint NOT NULL CHECK (amount > 0),
        asset text NOT NULL,
        network text NOT NULL,
        pay_to text NOT NULL,
        asset_name text NOT NULL,
        asset_version text NOT NULL,
        max_timeout_seconds integer NOT NULL CHECK (max_timeout_seconds > 0),
        description text NOT NULL DEFAULT '',
        updated_by uuid NOT NULL,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (org_id, resource)
    )""",
    *tenant_org_rls("commerce", "x402_prices"),
]
