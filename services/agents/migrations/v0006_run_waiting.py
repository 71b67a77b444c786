"""Runs that wait for their caller, and A2A tasks refused before any run (issue #19's interrupted states).

- `runs.status` gains `waiting`: the run asked its caller something (`ask_user`: A2A `input-required`) or a tool
  needs credentials the caller has not given (A2A `auth-required`). It holds no lease while it waits (no replica
  works on it, the sweeper leaves it alone); the caller's next message on the same task wakes it.
- `runs.waiting` says what for: `{kind: input|auth, message, tool_call_id, tool_name, details}`; null otherwise.
- `a2a_tasks.run_id` may be null: a task `rejected` before its run started (the agent refused it) has none.
"""

STATEMENTS = [
    "ALTER TABLE agents.runs DROP CONSTRAINT runs_status_check",
    "ALTER TABLE agents.runs ADD CONSTRAINT runs_status_check CHECK (status IN ('running', 'waiting', 'completed', "
    "'failed'))",
    "ALTER TABLE agents.runs ADD COLUMN waiting jsonb",
    "ALTER TABLE agents.a2a_tasks ALTER COLUMN run_id DROP NOT NULL",
]
