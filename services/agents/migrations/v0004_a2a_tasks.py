"""A2A tasks (shared/contracts/a2a.py): each task is a run of one agent; its push configs; the external callers.

- `a2a_tasks`: the task's id is the id of its first run's row here (a UUIDv7); `run_id` is the run it follows,
  `context_id` the conversation. `state` is set only by what the run cannot say (`canceled`); otherwise the
  task's state is read from the run. `history` keeps the A2A messages of the task (the caller's, the agent's).
- `a2a_push_configs`: the webhooks a client set for a task; `(task_id, config_id)` is unique.
- `a2a_callers`: each external caller of an org (by key id or card URL) and its `external_agent` thing, with
  the messages it exchanged per agent (`a2a_caller_agents`), mirrored on the `communicated` connection.
All org-scoped with Row-Level Security.
"""

from shared.runtime.db import tenant_org_rls

STATEMENTS = [
    """CREATE TABLE agents.a2a_tasks (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        agent_id uuid NOT NULL,
        agent_slug text NOT NULL,
        run_id uuid NOT NULL,
        context_id uuid NOT NULL,
        state text CHECK (state IN ('TASK_STATE_CANCELED', 'TASK_STATE_REJECTED')),
        caller_id uuid,
        history jsonb NOT NULL DEFAULT '[]',
        metadata jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )""",
    "CREATE INDEX a2a_tasks_by_agent ON agents.a2a_tasks (org_id, agent_id, id DESC)",
    "CREATE INDEX a2a_tasks_by_context ON agents.a2a_tasks (org_id, context_id, id DESC)",
    "CREATE UNIQUE INDEX a2a_tasks_by_run ON agents.a2a_tasks (run_id)",
    """CREATE TABLE agents.a2a_push_configs (
        org_id uuid NOT NULL,
        task_id uuid NOT NULL REFERENCES agents.a2a_tasks (id) ON DELETE CASCADE,
        config_id text NOT NULL,
        url text NOT NULL,
        token text,
        authentication jsonb,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (task_id, config_id)
    )""",
    """CREATE TABLE agents.a2a_callers (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        caller_key text NOT NULL,
        thing_id uuid,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        UNIQUE (org_id, caller_key)
    )""",
    """CREATE TABLE agents.a2a_caller_agents (
        org_id uuid NOT NULL,
        caller_id uuid NOT NULL REFERENCES agents.a2a_callers (id) ON DELETE CASCADE,
        agent_id uuid NOT NULL,
        connection_id uuid,
        messages integer NOT NULL DEFAULT 0,
        PRIMARY KEY (caller_id, agent_id)
    )""",
    *tenant_org_rls("agents", "a2a_tasks"),
    *tenant_org_rls("agents", "a2a_push_configs"),
    *tenant_org_rls("agents", "a2a_callers"),
    *tenant_org_rls("agents", "a2a_caller_agents"),
]
