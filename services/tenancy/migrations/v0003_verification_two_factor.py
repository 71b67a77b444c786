"""Email verification and two-factor authentication.

`people.email_verified_at`; `email_verifications` holds the keyed hash of each
token (never the token), org-scoped like invites. Two-factor state belongs to a
person, not an org: like `people`, its rows are visible in an org the person is
a member of (or under platform access). The TOTP secret is stored sealed
(`services.tenancy.totp.seal`), backup codes as keyed hashes.
"""

from services.tenancy.migrations.v0002_tenancy import _PLATFORM, _org_rls


def _person_rls(table: str) -> list[str]:
    condition = f"({_PLATFORM} OR EXISTS (SELECT 1 FROM tenancy.memberships m WHERE m.person_id = {table}.person_id))"
    return [
        f"ALTER TABLE tenancy.{table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE tenancy.{table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY member_of_current_org ON tenancy.{table} USING {condition} WITH CHECK {condition}",
    ]


STATEMENTS = [
    "ALTER TABLE tenancy.people ADD COLUMN email_verified_at timestamptz",
    """CREATE TABLE tenancy.email_verifications (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL REFERENCES tenancy.organizations (id),
        person_id uuid NOT NULL REFERENCES tenancy.people (id),
        email text NOT NULL,
        token_hash bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        used_at timestamptz
    )""",
    "CREATE INDEX email_verifications_pending ON tenancy.email_verifications (org_id, person_id) WHERE used_at IS NULL",
    *_org_rls("email_verifications"),
    """CREATE TABLE tenancy.two_factor (
        person_id uuid PRIMARY KEY REFERENCES tenancy.people (id),
        method text NOT NULL DEFAULT 'totp' CHECK (method IN ('totp')),
        secret_sealed bytea NOT NULL,
        enabled_at timestamptz,
        last_step bigint,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    )""",
    *_person_rls("two_factor"),
    """CREATE TABLE tenancy.two_factor_backup_codes (
        person_id uuid NOT NULL REFERENCES tenancy.people (id),
        code_hash bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        used_at timestamptz,
        PRIMARY KEY (person_id, code_hash)
    )""",
    *_person_rls("two_factor_backup_codes"),
]
