"""Installed packs (seed 001's `installedPacks`): one row per org and pack, written with the pack's roles.

`document` is the pack as installed (an uninstall undoes what was installed, whatever the shipped file
says now); `owned_roles` and `owned_policies` are what the install created, so an uninstall never removes
a role or policy the org had before.
"""

_ORG = "nullif(current_setting('app.org_id', true), '')::uuid"
_PLATFORM = "coalesce(current_setting('app.platform_access', true), '') = 'on'"
_CONDITION = f"(org_id = {_ORG} OR {_PLATFORM})"

STATEMENTS = [
    """CREATE TABLE tenancy.installed_packs (
        org_id uuid NOT NULL REFERENCES tenancy.organizations (id) ON DELETE CASCADE,
        name text NOT NULL,
        version text NOT NULL,
        document jsonb NOT NULL,
        owned_roles text[] NOT NULL DEFAULT '{}',
        owned_policies uuid[] NOT NULL DEFAULT '{}',
        installed_by uuid,
        installed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (org_id, name)
    )""",
    "ALTER TABLE tenancy.installed_packs ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE tenancy.installed_packs FORCE ROW LEVEL SECURITY",
    f"CREATE POLICY org_isolation ON tenancy.installed_packs USING {_CONDITION} WITH CHECK {_CONDITION}",
]
