"""Org wallets, agents' budgets and their spends (`commerce.wallets`, `wallet_budgets`, `wallet_spends`), RLS on org.

- `wallets`: one EVM account per org; the private key only sealed (`shared.kernel.sealing`, bound to the org's
  id), never in clear: a copied row or dump is useless without the commerce wallet secret.
- `wallet_budgets`: per agent, what one payment and any 24 hours may cost, in atomic units (numeric(78,0):
  a uint256). A sign locks the agent's budget row (`FOR UPDATE`), so concurrent signs of one agent queue
  there and each sees the spends committed before it.
- `wallet_spends`: every signature made (a reservation), with its outcome once the payer reports it. A
  nonce is signed once per wallet (unique), so the same authorization is never signed twice.
"""

from shared.runtime.db import tenant_org_rls

STATEMENTS = [
    """CREATE TABLE commerce.wallets (
        org_id uuid PRIMARY KEY,
        address text NOT NULL UNIQUE,
        key_sealed bytea NOT NULL,
        created_by uuid NOT NULL,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )""",
    """CREATE TABLE commerce.wallet_budgets (
        org_id uuid NOT NULL,
        agent_id uuid NOT NULL,
        per_call numeric(78, 0) NOT NULL CHECK (per_call >= 0),
        per_day numeric(78, 0) NOT NULL CHECK (per_day >= 0),
        asset text,
        updated_by uuid NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (org_id, agent_id)
    )""",
    """CREATE TABLE commerce.wallet_spends (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        agent_id uuid NOT NULL,
        amount numeric(78, 0) NOT NULL CHECK (amount > 0),
        asset text NOT NULL,
        network text NOT NULL,
        pay_to text NOT NULL,
        nonce text NOT NULL,
        valid_before bigint NOT NULL,
        resource text,
        status text NOT NULL DEFAULT 'signed' CHECK (status IN ('signed', 'settled', 'failed')),
        tx_hash text,
        error_reason text,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        settled_at timestamptz,
        UNIQUE (org_id, nonce)
    )""",
    "CREATE INDEX wallet_spends_agent_time ON commerce.wallet_spends (org_id, agent_id, created_at)",
    *tenant_org_rls("commerce", "wallets"),
    *tenant_org_rls("commerce", "wallet_budgets"),
    *tenant_org_rls("commerce", "wallet_spends"),
]
