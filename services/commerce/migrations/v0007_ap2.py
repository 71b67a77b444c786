"""AP2 v2 (`commerce.ap2_*`), RLS on org: keys, the trust list, checkouts, mandates, uses and receipts.

- `ap2_keys`: the org's ES256 keys (`merchant`: checkouts and receipts; `issuer`: the credential provider
  signing its agents' mandates; `agent`: one per agent holding a mandate), private halves only sealed
  (`shared.kernel.sealing`, bound to the org), public JWK beside them.
- `ap2_trusted_issuers`: the credential providers (their JWKS) whose mandates this org accepts as a merchant.
- `ap2_checkouts`: merchant-signed checkout JWTs, each with a single-use nonce; `paid` once a mandate paid it.
- `ap2_open_mandates`: one row per open mandate seen by this merchant (by hash): a present locks it
  (`FOR UPDATE`), so two purchases under one mandate queue there and the second sees the first's use.
- `ap2_mandates`: the mandates this org granted or accepted (the claims, never a presented credential);
  a granted one keeps its root SD-JWT (bound to the agent's key, useless without it) for the agent to close.
- `ap2_receipts`: a signed receipt per paid checkout; with the open mandate's hash and the amount, they
  are the mandate's uses the budget and recurrence count.
"""

from shared.runtime.db import tenant_org_rls

STATEMENTS = [
    """CREATE TABLE commerce.ap2_keys (
        org_id uuid NOT NULL,
        role text NOT NULL CHECK (role IN ('merchant', 'issuer', 'agent')),
        owner_id uuid NOT NULL,
        kid text NOT NULL UNIQUE,
        public_jwk jsonb NOT NULL,
        key_sealed bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (org_id, role, owner_id)
    )""",
    """CREATE TABLE commerce.ap2_trusted_issuers (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        issuer text NOT NULL,
        jwks jsonb NOT NULL,
        created_by uuid NOT NULL,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )""",
    """CREATE TABLE commerce.ap2_checkouts (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        merchant_id text NOT NULL,
        checkout_jwt text NOT NULL,
        checkout_hash text NOT NULL,
        nonce text NOT NULL UNIQUE,
        amount bigint NOT NULL CHECK (amount > 0),
        currency text NOT NULL,
        status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'paid')),
        expires_at timestamptz NOT NULL,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        paid_at timestamptz
    )""",
    """CREATE TABLE commerce.ap2_open_mandates (
        org_id uuid NOT NULL,
        open_hash text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (org_id, open_hash)
    )""",
    """CREATE TABLE commerce.ap2_mandates (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        kind text NOT NULL CHECK (kind IN ('open', 'closed')),
        mandate_type text NOT NULL CHECK (mandate_type IN ('payment', 'checkout')),
        direction text NOT NULL CHECK (direction IN ('granted', 'accepted')),
        agent_id uuid,
        credential_hash text NOT NULL,
        claims jsonb NOT NULL,
        credential text,
        status text NOT NULL DEFAULT 'active',
        fulfills uuid,
        expires_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        UNIQUE (org_id, direction, credential_hash)
    )""",
    """CREATE TABLE commerce.ap2_receipts (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        checkout_id uuid NOT NULL UNIQUE,
        mandate_id uuid NOT NULL,
        open_hash text NOT NULL,
        amount bigint NOT NULL,
        currency text NOT NULL,
        receipt_jwt text NOT NULL,
        receipt jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )""",
    "CREATE INDEX ap2_receipts_open ON commerce.ap2_receipts (org_id, open_hash)",
    *tenant_org_rls("commerce", "ap2_keys"),
    *tenant_org_rls("commerce", "ap2_trusted_issuers"),
    *tenant_org_rls("commerce", "ap2_checkouts"),
    *tenant_org_rls("commerce", "ap2_open_mandates"),
    *tenant_org_rls("commerce", "ap2_mandates"),
    *tenant_org_rls("commerce", "ap2_receipts"),
]
