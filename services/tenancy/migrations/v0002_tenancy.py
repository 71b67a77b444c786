"""Organizations, people, memberships, invites, roles and policies, API keys, quotas, rate limits.

Every org-owned table gets Row-Level Security on its org column. A row is visible
when it belongs to the transaction's `app.org_id`, or when the transaction set
`app.platform_access` (the repository does so only for lookups that precede an
org: verifying a key, accepting an invite, signup, listing orgs for a platform
owner). People belong to no single org: one is visible where they are a member.
"""

_ORG = "nullif(current_setting('app.org_id', true), '')::uuid"
_PLATFORM = "coalesce(current_setting('app.platform_access', true), '') = 'on'"


def _org_rls(table: str, column: str = "org_id") -> list[str]:
    condition = f"({column} = {_ORG} OR {_PLATFORM})"
    return [
        f"ALTER TABLE tenancy.{table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE tenancy.{table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY org_isolation ON tenancy.{table} USING {condition} WITH CHECK {condition}",
    ]


STATEMENTS = [
    """CREATE TABLE tenancy.organizations (
        id uuid PRIMARY KEY,
        name text NOT NULL,
        slug text NOT NULL UNIQUE,
        domain text UNIQUE,
        status text NOT NULL CHECK (status IN ('active', 'suspended', 'trial', 'cancelled')),
        plan text NOT NULL CHECK (plan IN ('starter', 'pro', 'enterprise')),
        is_platform boolean NOT NULL DEFAULT false,
        billing_customer_id text,
        billing_subscription_id text,
        settings jsonb NOT NULL,
        trial_ends_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    )""",
    "CREATE UNIQUE INDEX organizations_one_platform ON tenancy.organizations (is_platform) WHERE is_platform",
    *_org_rls("organizations", "id"),
    """CREATE TABLE tenancy.people (
        id uuid PRIMARY KEY,
        email text NOT NULL UNIQUE CHECK (email = lower(email)),
        username text NOT NULL UNIQUE,
        display_name text NOT NULL,
        role text NOT NULL CHECK (role IN ('platform_owner', 'org_owner', 'org_user', 'customer')),
        bio text,
        avatar text,
        current_org_id uuid REFERENCES tenancy.organizations (id),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    )""",
    """CREATE TABLE tenancy.memberships (
        org_id uuid NOT NULL REFERENCES tenancy.organizations (id),
        person_id uuid NOT NULL REFERENCES tenancy.people (id),
        role text NOT NULL,
        permissions text[] NOT NULL DEFAULT '{}',
        invited_by uuid,
        invited_at timestamptz,
        joined_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (org_id, person_id)
    )""",
    "CREATE INDEX memberships_by_person ON tenancy.memberships (person_id)",
    *_org_rls("memberships"),
    "ALTER TABLE tenancy.people ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE tenancy.people FORCE ROW LEVEL SECURITY",
    f"""CREATE POLICY member_of_current_org ON tenancy.people
        USING ({_PLATFORM} OR EXISTS (SELECT 1 FROM tenancy.memberships m WHERE m.person_id = people.id))
        WITH CHECK (true)""",
    """CREATE TABLE tenancy.invites (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL REFERENCES tenancy.organizations (id),
        email text NOT NULL,
        role text NOT NULL,
        permissions text[] NOT NULL DEFAULT '{}',
        token_hash bytea NOT NULL,
        invited_by uuid NOT NULL,
        invited_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        accepted_at timestamptz,
        accepted_by uuid
    )""",
    *_org_rls("invites"),
    """CREATE TABLE tenancy.roles (
        org_id uuid NOT NULL REFERENCES tenancy.organizations (id),
        name text NOT NULL,
        description text NOT NULL DEFAULT '',
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (org_id, name)
    )""",
    *_org_rls("roles"),
    """CREATE TABLE tenancy.policies (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL REFERENCES tenancy.organizations (id),
        role text NOT NULL,
        resource text NOT NULL,
        action text NOT NULL,
        effect text NOT NULL CHECK (effect IN ('allow', 'deny')),
        priority integer NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL DEFAULT now()
    )""",
    "CREATE INDEX policies_by_role ON tenancy.policies (org_id, role)",
    *_org_rls("policies"),
    """CREATE TABLE tenancy.api_keys (
        key_id text PRIMARY KEY,
        org_id uuid NOT NULL REFERENCES tenancy.organizations (id),
        person_id uuid NOT NULL REFERENCES tenancy.people (id),
        name text NOT NULL,
        key_hash bytea NOT NULL,
        scopes text[] NOT NULL DEFAULT '{}',
        expires_at timestamptz,
        revoked_at timestamptz,
        last_used_at timestamptz,
        created_by uuid,
        created_at timestamptz NOT NULL DEFAULT now()
    )""",
    "CREATE INDEX api_keys_by_person ON tenancy.api_keys (org_id, person_id)",
    *_org_rls("api_keys"),
    """CREATE TABLE tenancy.quotas (
        org_id uuid NOT NULL REFERENCES tenancy.organizations (id),
        metric text NOT NULL,
        quota_limit bigint NOT NULL CHECK (quota_limit >= 0),
        used bigint NOT NULL DEFAULT 0 CHECK (used >= 0),
        resets_monthly boolean NOT NULL DEFAULT false,
        period_start timestamptz NOT NULL DEFAULT date_trunc('month', now()),
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (org_id, metric)
    )""",
    *_org_rls("quotas"),
    """CREATE TABLE tenancy.rate_limit_rules (
        org_id uuid NOT NULL REFERENCES tenancy.organizations (id),
        scope text NOT NULL CHECK (scope IN ('org', 'key', 'operation')),
        operation text NOT NULL DEFAULT '*',
        max_calls integer NOT NULL CHECK (max_calls > 0),
        window_seconds integer NOT NULL CHECK (window_seconds > 0),
        PRIMARY KEY (org_id, scope, operation)
    )""",
    *_org_rls("rate_limit_rules"),
    """CREATE TABLE tenancy.rate_limit_windows (
        org_id uuid NOT NULL,
        bucket text NOT NULL,
        window_start timestamptz NOT NULL,
        calls integer NOT NULL,
        PRIMARY KEY (org_id, bucket, window_start)
    )""",
    *_org_rls("rate_limit_windows"),
]
