"""Reminders (`agents.reminders`): what to tell whom and when, and the job that will (README "Scheduling").

A meeting itself is a graph thing; a reminder of one keeps `meeting_id` and its `offset_seconds` before the
start, so rescheduling moves it. `job_id` is its `reminder.send` job; `status` goes scheduled -> sent once,
or -> cancelled. Row-Level Security confines a transaction to its org (the job runs in the reminder's org).
"""

from shared.runtime.db import tenant_org_rls

STATEMENTS = [
    """CREATE TABLE agents.reminders (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        meeting_id uuid,
        recipient_id uuid NOT NULL,
        related_id uuid,
        channel text NOT NULL,
        subject text NOT NULL,
        message text NOT NULL,
        remind_at timestamptz NOT NULL,
        offset_seconds integer CHECK (offset_seconds >= 0),
        status text NOT NULL CHECK (status IN ('scheduled', 'sent', 'cancelled')),
        job_id uuid,
        created_by uuid NOT NULL,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        sent_at timestamptz,
        CHECK ((status = 'sent') = (sent_at IS NOT NULL))
    )""",
    "CREATE INDEX reminders_meeting ON agents.reminders (org_id, meeting_id) WHERE meeting_id IS NOT NULL",
    "CREATE INDEX reminders_org ON agents.reminders (org_id, id DESC)",
    *tenant_org_rls("agents", "reminders"),
]
