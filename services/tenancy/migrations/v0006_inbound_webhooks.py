"""Signed inbound webhooks: the sources an org lets third parties sign for, and the record of what they sent.

`webhook_sources` holds each source's scheme (`standard` = Standard Webhooks, `hmac` = one header with an
HMAC-SHA256 of the body), its secret sealed (envelope encryption, `shared.runtime.keyring`, bound to the org
and the source; during a rotation's grace period the previous secret too), its tolerance, rate limit and
the mapping from the provider's event types to ontology events. `webhook_receipts` is the dedup record: one row per (source,
webhook id), written in the transaction that emits the mapped event, so a replay finds the row and emits
nothing. Deleting a source deletes its receipts.
"""

from services.tenancy.migrations.v0002_tenancy import _org_rls  # the same policy: the org's rows, or platform access


STATEMENTS = [
    """CREATE TABLE tenancy.webhook_sources (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL REFERENCES tenancy.organizations (id) ON DELETE CASCADE,
        name text NOT NULL,
        scheme text NOT NULL CHECK (scheme IN ('standard', 'hmac')),
        secret_sealed bytea NOT NULL,
        secret_hint text NOT NULL,
        previous_secret_sealed bytea,
        previous_valid_until timestamptz,
        signature_header text,
        signature_encoding text CHECK (signature_encoding IN ('hex', 'base64')),
        signature_prefix text NOT NULL DEFAULT '',
        timestamp_header text,
        id_header text,
        type_path text NOT NULL DEFAULT 'type',
        type_header text,
        tolerance_seconds integer NOT NULL CHECK (tolerance_seconds BETWEEN 1 AND 86400),
        max_per_minute integer NOT NULL CHECK (max_per_minute >= 1),
        mappings jsonb NOT NULL DEFAULT '{}',
        created_by uuid NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        rotated_at timestamptz,
        UNIQUE (org_id, name),
        CHECK (scheme = 'standard' OR (signature_header IS NOT NULL AND signature_encoding IS NOT NULL))
    )""",
    *_org_rls("webhook_sources"),
    """CREATE TABLE tenancy.webhook_receipts (
        source_id uuid NOT NULL REFERENCES tenancy.webhook_sources (id) ON DELETE CASCADE,
        webhook_id text NOT NULL,
        org_id uuid NOT NULL,
        provider_type text,
        outcome text NOT NULL CHECK (outcome IN ('mapped', 'unmapped')),
        event_type text NOT NULL,
        event_id uuid,
        received_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (source_id, webhook_id)
    )""",
    "CREATE INDEX webhook_receipts_by_org ON tenancy.webhook_receipts (org_id, received_at)",
    *_org_rls("webhook_receipts"),
]
