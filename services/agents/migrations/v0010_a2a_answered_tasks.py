"""A2A tasks answered at once, without a run (issue #22: an AP2 exchange with a merchant agent, a2a_ap2.py).

- `a2a_tasks.state` may also be `TASK_STATE_COMPLETED` or `TASK_STATE_FAILED`: the state of a task no run
  stands behind (`run_id` null), its answer in `metadata.answered`, so `GetTask` and `ListTasks` find it as they
  find the agent's other tasks. A task that follows a run still leaves `state` null for those (the run says).
"""

STATEMENTS = [
    "ALTER TABLE agents.a2a_tasks DROP CONSTRAINT a2a_tasks_state_check",
    ("ALTER TABLE agents.a2a_tasks ADD CONSTRAINT a2a_tasks_state_check CHECK (state IN ('TASK_STATE_CANCELED', "
     "'TASK_STATE_REJECTED', 'TASK_STATE_COMPLETED', 'TASK_STATE_FAILED'))"),
]
