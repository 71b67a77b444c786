"""External A2A agents of an org (`agents.external_agents`): the resolved card, the credential, usage counters.

- `id` is the `external_agent` thing's id; `slug` is unique per org (archived ones keep theirs).
- An active external agent's card URL is unique per org (a partial unique index): the same remote is one thing.
- `credential` is the secret the remote demands; it is never returned (replies say `has_credentials`).
- `external_exchanges` tallies the messages each agent of ours exchanged with each external agent, and names
  the `communicated` connection (our agent → the external agent) whose `metadata.messagesExchanged` shows it.
- Row-Level Security confines every statement to the caller's org.
"""

from shared.runtime.db import tenant_org_rls

STATEMENTS = [
    """CREATE TABLE agents.external_agents (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        slug text NOT NULL,
        name text NOT NULL,
        description text NOT NULL DEFAULT '',
        card_url text NOT NULL,
        card jsonb NOT NULL,
        provider text NOT NULL DEFAULT '',
        streaming boolean NOT NULL DEFAULT false,
        credential text,
        timeout double precision NOT NULL DEFAULT 120 CHECK (timeout > 0),
        status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
        messages_sent integer NOT NULL DEFAULT 0,
        messages_received integer NOT NULL DEFAULT 0,
        last_used_at timestamptz,
        resolved_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        created_by uuid NOT NULL,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        archived_at timestamptz,
        UNIQUE (org_id, slug)
    )""",
    "CREATE UNIQUE INDEX external_agents_card ON agents.external_agents (org_id, card_url) WHERE status = 'active'",
    """CREATE TABLE agents.external_exchanges (
        org_id uuid NOT NULL,
        agent_id uuid NOT NULL,
        external_id uuid NOT NULL REFERENCES agents.external_agents (id) ON DELETE CASCADE,
        messages integer NOT NULL DEFAULT 0,
        connection_id uuid,
        PRIMARY KEY (org_id, agent_id, external_id)
    )""",
    *tenant_org_rls("agents", "external_agents"),
    *tenant_org_rls("agents", "external_exchanges"),
]
