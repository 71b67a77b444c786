"""AP2, third part: a refusal is final; checkouts for ACP sessions.

- `ap2_refused_chains`: every mandate chain this merchant refused (by the digest of the whole chain, the
  hash a receipt would reference), with the checkout and the reason. A refused chain is never accepted
  later (service_ap2_present.py checks it under the checkout's lock), so a shopping agent whose purchase
  was refused may count that closed mandate's use as released: the merchant can no longer charge it.
- `ap2_checkouts.acp_session_id` / `acp_version`: a checkout JWT signed for an ACP checkout session (as the
  session stood at that version); a checkout mandate presented for it is refused once the session changed.
"""

from shared.runtime.db import tenant_org_rls

STATEMENTS = [
    """CREATE TABLE commerce.ap2_refused_chains (
        org_id uuid NOT NULL,
        chain_hash text NOT NULL,
        checkout_id uuid NOT NULL,
        reason text,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (org_id, chain_hash)
    )""",
    *tenant_org_rls("commerce", "ap2_refused_chains"),
    "ALTER TABLE commerce.ap2_checkouts ADD COLUMN acp_session_id text",
    "ALTER TABLE commerce.ap2_checkouts ADD COLUMN acp_version int",
]
