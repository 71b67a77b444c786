"""Agents, their versioned configs, prompts, conversations, runs and their steps, org-scoped with Row-Level Security.

- An agent's id is its graph thing's id; `slug` is unique per org.
- `agent_configs` is append-only: every change is a new version of the environment's config.
- A conversation's messages carry a per-conversation `seq` (allocated from `conversations.next_seq`),
  so a reader pages them in order whatever the clock says.
- `run_leases` has no RLS on purpose: a replica's sweeper looks for expired leases across every org
  (like knowledge's ingest queue); it holds no content, only which replica runs which run until when.
"""

from shared.runtime.db import tenant_org_rls

STATEMENTS = [
    """CREATE TABLE agents.agents (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        slug text NOT NULL,
        name text NOT NULL,
        type text NOT NULL,
        description text NOT NULL DEFAULT '',
        status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
        prompts uuid[] NOT NULL DEFAULT '{}',
        created_by uuid NOT NULL,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        archived_at timestamptz,
        UNIQUE (org_id, slug),
        UNIQUE (org_id, id)
    )""",
    """CREATE TABLE agents.agent_configs (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        agent_id uuid NOT NULL,
        environment text NOT NULL CHECK (environment IN ('development', 'production')),
        version integer NOT NULL CHECK (version >= 1),
        config jsonb NOT NULL,
        created_by uuid NOT NULL,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        UNIQUE (org_id, agent_id, environment, version),
        FOREIGN KEY (org_id, agent_id) REFERENCES agents.agents (org_id, id) ON DELETE CASCADE
    )""",
    """CREATE TABLE agents.prompts (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        name text NOT NULL,
        step text NOT NULL,
        template text NOT NULL,
        variables text[] NOT NULL DEFAULT '{}',
        description text NOT NULL DEFAULT '',
        tags text[] NOT NULL DEFAULT '{}',
        status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
        version integer NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )""",
    "CREATE INDEX prompts_org_step ON agents.prompts (org_id, step, id)",
    """CREATE TABLE agents.conversations (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        title text NOT NULL,
        status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'closed', 'archived')),
        external_thread_id text,
        tags text[] NOT NULL DEFAULT '{}',
        next_seq integer NOT NULL DEFAULT 1,
        last_message_at timestamptz,
        created_by uuid NOT NULL,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        UNIQUE (org_id, id)
    )""",
    "CREATE UNIQUE INDEX conversations_external ON agents.conversations (org_id, external_thread_id)"
    " WHERE external_thread_id IS NOT NULL",
    """CREATE TABLE agents.participants (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        conversation_id uuid NOT NULL,
        kind text NOT NULL CHECK (kind IN ('person', 'agent')),
        member_id uuid NOT NULL,
        status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'removed')),
        added_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        removed_at timestamptz,
        FOREIGN KEY (org_id, conversation_id) REFERENCES agents.conversations (org_id, id) ON DELETE CASCADE
    )""",
    "CREATE UNIQUE INDEX participants_active ON agents.participants (org_id, conversation_id, kind, member_id)"
    " WHERE status = 'active'",
    """CREATE TABLE agents.messages (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        conversation_id uuid NOT NULL,
        seq integer NOT NULL,
        role text NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
        author_kind text NOT NULL CHECK (author_kind IN ('person', 'agent', 'system')),
        author_id uuid,
        content text,
        tool_calls jsonb NOT NULL DEFAULT '[]',
        tool_call_id text,
        step text,
        tags text[] NOT NULL DEFAULT '{}',
        attachments jsonb NOT NULL DEFAULT '[]',
        run_id uuid,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        UNIQUE (org_id, conversation_id, seq),
        FOREIGN KEY (org_id, conversation_id) REFERENCES agents.conversations (org_id, id) ON DELETE CASCADE
    )""",
    """CREATE TABLE agents.runs (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        agent_id uuid NOT NULL,
        agent_slug text NOT NULL,
        conversation_id uuid NOT NULL,
        environment text NOT NULL,
        config_version integer NOT NULL,
        status text NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
        model text NOT NULL,
        iterations integer NOT NULL DEFAULT 0,
        answer text,
        error jsonb,
        citations jsonb NOT NULL DEFAULT '[]',
        input_tokens integer NOT NULL DEFAULT 0,
        output_tokens integer NOT NULL DEFAULT 0,
        cost double precision NOT NULL DEFAULT 0,
        latency_ms integer,
        parent_run_id uuid,
        depth integer NOT NULL DEFAULT 0 CHECK (depth >= 0),
        chain uuid[] NOT NULL DEFAULT '{}',
        resumed integer NOT NULL DEFAULT 0,
        actor_id uuid NOT NULL,
        auth jsonb NOT NULL,
        request jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        finished_at timestamptz,
        UNIQUE (org_id, id),
        FOREIGN KEY (org_id, agent_id) REFERENCES agents.agents (org_id, id)
    )""",
    "CREATE INDEX runs_org_agent ON agents.runs (org_id, agent_id, id)",
    "CREATE INDEX runs_org_created ON agents.runs (org_id, created_at)",
    """CREATE TABLE agents.run_steps (
        org_id uuid NOT NULL,
        run_id uuid NOT NULL,
        seq integer NOT NULL,
        kind text NOT NULL,
        iteration integer NOT NULL DEFAULT 0,
        body jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (run_id, seq),
        FOREIGN KEY (org_id, run_id) REFERENCES agents.runs (org_id, id) ON DELETE CASCADE
    )""",
    """CREATE TABLE agents.run_leases (
        run_id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        owner text NOT NULL,
        expires_at timestamptz NOT NULL,
        takeovers integer NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX run_leases_expiry ON agents.run_leases (expires_at)",
    *tenant_org_rls("agents", "agents"),
    *tenant_org_rls("agents", "agent_configs"),
    *tenant_org_rls("agents", "prompts"),
    *tenant_org_rls("agents", "conversations"),
    *tenant_org_rls("agents", "participants"),
    *tenant_org_rls("agents", "messages"),
    *tenant_org_rls("agents", "runs"),
    *tenant_org_rls("agents", "run_steps"),
]
