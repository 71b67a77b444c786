"""Envelope encryption of the agents service's secrets (`services/agents/keys.py`, `shared.runtime.keyring`):

- `agents.data_keys`: each org's data keys, wrapped by a key-encryption key.
- `agents.plugin_installs.secrets_sealed` keeps its column; new blobs are envelope-sealed, old ones still open.
- `agents.external_agents.credential_sealed` holds an external agent's credential sealed, `credential_hint` its last
  four characters (what replies show). `credential` (clear) is left only on rows written before this migration; such
  a credential is sealed, and the column emptied, at its first use.
- `agents.a2a_push_configs.secrets_sealed` holds a push config's token and authentication sealed (one JSON blob);
  `token` and `authentication` stay empty on new rows (rows stored before keep working: a task's configs are
  short-lived).
- Agent configs (`agents.agent_configs.config` JSONB) need no column: HTTP tools' `secret` and MCP servers' `headers`
  are stored as `secret_sealed` / `headers_sealed` (base64) by `keys.seal_config`.
"""

from shared.runtime.keyring import data_keys_table

STATEMENTS = [
    *data_keys_table("agents"),
    "ALTER TABLE agents.external_agents ADD COLUMN credential_sealed bytea, ADD COLUMN credential_hint text",
    "ALTER TABLE agents.a2a_push_configs ADD COLUMN secrets_sealed bytea",
]
