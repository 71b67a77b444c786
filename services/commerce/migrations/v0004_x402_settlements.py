"""x402's replay store: each EIP-3009 authorization is settled once, whichever replica or org sees it.

- `x402_nonces` holds one row per authorization ever claimed, keyed by what the chain itself keys it
  by: (network, asset, payer, nonce). No RLS on purpose, like the outbox: a replayed payment must be
  refused in every org, and the row holds nothing the chain does not publish (plus the claiming org).
  `settle` inserts it first (`ON CONFLICT DO NOTHING`): of two replicas racing, one settles.
- `x402_settlements` is the org's record of the payment (amount, payTo, resource, status, tx hash),
  org-scoped with RLS. `claimed` until the chain answers, then `settled` or `failed`.
- Addresses and nonces are stored lowercase; `amount` is in the asset's atomic units (uint256 fits numeric(78)).
"""

from shared.runtime.db import tenant_org_rls

STATEMENTS = [
    """CREATE TABLE commerce.x402_nonces (
        network text NOT NULL,
        asset text NOT NULL,
        payer text NOT NULL,
        nonce text NOT NULL,
        org_id uuid NOT NULL,
        settlement_id uuid NOT NULL,
        claimed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (network, asset, payer, nonce)
    )""",
    """CREATE TABLE commerce.x402_settlements (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        network text NOT NULL,
        asset text NOT NULL,
        payer text NOT NULL,
        nonce text NOT NULL,
        amount numeric(78, 0) NOT NULL CHECK (amount >= 0),
        pay_to text NOT NULL,
        resource text,
        status text NOT NULL CHECK (status IN ('claimed', 'settled', 'failed')),
        tx_hash text,
        error_reason text,
        payment_id uuid,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        settled_at timestamptz,
        UNIQUE (network, asset, payer, nonce)
    )""",
    "CREATE INDEX x402_settlements_org_created ON commerce.x402_settlements (org_id, created_at)",
    *tenant_org_rls("commerce", "x402_settlements"),
]
