"""`one jobs list|show|cancel|retry|enqueue`: the org's durable jobs from a terminal, through the SDK.

Commands act as a verified key (`One.connect()`: the running stack's bus, or `ONE_URL` over the
gateway). Lists and shows print tables that fit 80 columns, or the reply with `--json`.
"""

from datetime import datetime
from typing import Any
from uuid import UUID

import typer

from shared.tools.cli_output import Column, act, json_object, print_json, print_record, print_table

jobs_app = typer.Typer(help="Durable jobs: list, show, cancel, retry, enqueue.", no_args_is_help=True)

JsonOption = typer.Option(False, "--json", help="The reply as JSON (the contract's model).")
JOB_COLUMNS = [Column("id", "id"), Column("kind"), Column("state"), Column("tries"), Column("run at"),
               Column("error", "text")]


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else ""


def show_job(job: Any, as_json: bool) -> None:
    if as_json:
        print_json(job)
        return
    print_record({
        "id": str(job.id), "kind": job.kind, "queue": job.queue, "state": job.state, "priority": str(job.priority),
        "attempts": f"{job.attempts} of {job.max_attempts}", "run_at": _when(job.run_at),
        "started_at": _when(job.started_at), "finished_at": _when(job.finished_at),
        "idempotency_key": job.idempotency_key, "payload": job.payload, "result": job.result,
        "last_error": job.last_error, "claimed_by": job.claimed_by,
    })


@jobs_app.command("list")
def list_jobs(
    state: list[str] = typer.Option(None, "--state", help="Only these states (repeatable): pending, claimed, "
                                                          "running, completed, failed, dead, cancelled."),
    kind: str = typer.Option(None, help="Only this kind (e.g. notification.send)."),
    queue: str = typer.Option(None, help="Only this queue."),
    cursor: UUID = typer.Option(None, help="The next page, as the last page printed it."),
    limit: int = typer.Option(50, min=1, max=100),
    as_json: bool = JsonOption,
) -> None:
    """The organization's jobs, newest first."""
    from shared.contracts.jobs import JOB_LIST

    query = {"state": state or [], "kind": kind, "queue": queue, "cursor": cursor and str(cursor), "limit": limit}
    page = act(lambda one: one.request(JOB_LIST, {k: v for k, v in query.items() if v is not None}))
    if as_json:
        print_json(page)
        return
    print_table(JOB_COLUMNS, [(j.id, j.kind, j.state, f"{j.attempts}/{j.max_attempts}", _when(j.run_at),
                               j.last_error or "") for j in page.jobs], empty="no jobs")
    if page.next_cursor:
        print(f"next page: --cursor {page.next_cursor}")


@jobs_app.command("show")
def show(id: UUID, as_json: bool = JsonOption) -> None:
    """One job: its state, attempts, payload, result and last error."""
    from shared.contracts.jobs import JOB_GET

    show_job(act(lambda one: one.request(JOB_GET, {"id": str(id)})), as_json)


@jobs_app.command("cancel")
def cancel(id: UUID, as_json: bool = JsonOption) -> None:
    """Stop a job that has not ended (a running one stops at its worker's next heartbeat)."""
    from shared.contracts.jobs import JOB_CANCEL

    show_job(act(lambda one: one.request(JOB_CANCEL, {"id": str(id)})), as_json)


@jobs_app.command("retry")
def retry(
    id: UUID,
    run_at: datetime = typer.Option(None, "--at", help="When (ISO 8601 with a time zone); default now."),
    as_json: bool = JsonOption,
) -> None:
    """Run a failed job now; a dead or cancelled one gets all its attempts back."""
    from shared.contracts.jobs import JOB_RETRY

    payload = {"id": str(id)} | ({"run_at": run_at.isoformat()} if run_at else {})
    show_job(act(lambda one: one.request(JOB_RETRY, payload)), as_json)


@jobs_app.command("enqueue")
def enqueue(
    kind: str = typer.Argument(..., help="notification.send, knowledge.ingest, cleanup.expired or agent.run."),
    payload: str = typer.Option("{}", "--payload", "-p", help="The kind's payload as a JSON object (or @file.json)."),
    run_at: datetime = typer.Option(None, "--at", help="Not before this time (ISO 8601 with a time zone)."),
    priority: int = typer.Option(0, help="Higher runs first."),
    max_attempts: int = typer.Option(5, "--max-attempts", min=1, max=25),
    idempotency_key: str = typer.Option(None, "--idempotency-key", help="The same key answers the same job."),
    as_json: bool = JsonOption,
) -> None:
    """Queue a job of one kind (`one jobs enqueue notification.send -p '{"message": "hi"}' --at ...`)."""
    from shared.contracts.jobs import JOB_ENQUEUE

    body = {"kind": kind, "payload": json_object(payload, "--payload"), "priority": priority,
            "max_attempts": max_attempts, "idempotency_key": idempotency_key,
            "run_at": run_at.isoformat() if run_at else None}
    show_job(act(lambda one: one.request(JOB_ENQUEUE, {k: v for k, v in body.items() if v is not None})), as_json)
