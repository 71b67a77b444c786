"""The plugin registry and each org's installs of its plugins (issue #25, seed 004).

- `plugins` is the platform's catalogue, one row per plugin (its current version): every org reads it, so it has
  no Row-Level Security; only a platform owner writes it (`agents.plugin.import` checks that). `id` is the
  `elizaos_plugin` thing's id in the platform org, `org_id` that org. `manifest` is the validated entry.
- `plugin_installs` is an org's install of a plugin (`id` = its `plugin_instance` thing's id), unique per org and
  plugin. `settings` holds only the non-secret settings; secrets are in `secrets_sealed` (one sealed blob of the
  JSON object, bound to the install's id), never in clear. `dependencies` names the plugins it needs,
  `explicit` says whether the org asked for it or it came in as a dependency. `consecutive_failures` counts
  failed action calls since the last success; at ten the install is `suspended` with the reason.
"""

from shared.runtime.db import tenant_org_rls

STATEMENTS = [
    """CREATE TABLE agents.plugins (
        name text PRIMARY KEY,
        id uuid NOT NULL UNIQUE,
        org_id uuid NOT NULL,
        version text NOT NULL,
        manifest jsonb NOT NULL,
        installable boolean NOT NULL,
        imported_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )""",
    """CREATE TABLE agents.plugin_installs (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        plugin text NOT NULL REFERENCES agents.plugins (name),
        version text NOT NULL,
        status text NOT NULL DEFAULT 'installed'
            CHECK (status IN ('installed', 'active', 'inactive', 'suspended')),
        settings jsonb NOT NULL DEFAULT '{}',
        secrets_set text[] NOT NULL DEFAULT '{}',
        secrets_sealed bytea,
        dependencies text[] NOT NULL DEFAULT '{}',
        explicit boolean NOT NULL DEFAULT true,
        executions integer NOT NULL DEFAULT 0,
        consecutive_failures integer NOT NULL DEFAULT 0,
        suspended_reason text,
        prompt_ids uuid[] NOT NULL DEFAULT '{}',
        created_by uuid NOT NULL,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        UNIQUE (org_id, plugin)
    )""",
    *tenant_org_rls("agents", "plugin_installs"),
]
