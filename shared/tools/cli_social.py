"""`one social ...`, `one meetings ...`, `one reminders ...`: follows, reactions, comments and scheduling from a
terminal, through the SDK (`One.connect()`: the running stack's bus, or `ONE_URL` over the gateway).

Each command is one request; it prints the reply's main facts, or the reply itself with `--json`.
"""

from datetime import datetime
from typing import Any
from uuid import UUID

import typer

from shared.tools.cli_output import Column, act, print_json, print_record, print_table

social_app = typer.Typer(help="Follow people and agents, react to and comment on content.", no_args_is_help=True)
meetings_app = typer.Typer(help="Meetings: schedule, show, reschedule, cancel.", no_args_is_help=True)
reminders_app = typer.Typer(help="Reminders: add, list, cancel.", no_args_is_help=True)

JsonOption = typer.Option(False, "--json", help="The reply as JSON (the contract's model).")
AsOption = typer.Option(None, "--as", help="Act for this person or agent (needs social:act_as).")


def _request(spec: Any, payload: dict[str, Any]) -> Any:
    return act(lambda one: one.request(spec, {k: v for k, v in payload.items() if v is not None}))


def _show(reply: Any, as_json: bool, fields: dict[str, Any]) -> None:
    if as_json:
        print_json(reply)
    else:
        print_record(fields)


def _social(spec_name: str, payload: dict[str, Any], as_json: bool) -> None:
    from shared.contracts.graph import social

    reply = _request(getattr(social, spec_name), payload)
    fields = {k: v for k, v in reply.model_dump(mode="json").items() if k not in ("connection", "comment")}
    if getattr(reply, "connection", None) is not None:
        fields["connection"] = str(reply.connection.id)
    _show(reply, as_json, fields)


@social_app.command("follow")
def follow(followee: UUID, follower: UUID = AsOption, as_json: bool = JsonOption) -> None:
    """Follow a person or agent (following twice changes nothing)."""
    _social("FOLLOW", {"followee_id": str(followee), "follower_id": follower and str(follower)}, as_json)


@social_app.command("unfollow")
def unfollow(followee: UUID, follower: UUID = AsOption, as_json: bool = JsonOption) -> None:
    """Stop following (the link ends; its history stays)."""
    _social("UNFOLLOW", {"followee_id": str(followee), "follower_id": follower and str(follower)}, as_json)


@social_app.command("react")
def react(target: UUID, kind: str = typer.Option("like", help="like, love, 👍, ..."), reactor: UUID = AsOption,
          as_json: bool = JsonOption) -> None:
    """React to a message or a piece of content."""
    _social("REACT", {"target_id": str(target), "kind": kind, "reactor_id": reactor and str(reactor)}, as_json)


@social_app.command("unreact")
def unreact(target: UUID, kind: str = typer.Option("like"), reactor: UUID = AsOption,
            as_json: bool = JsonOption) -> None:
    """Take a reaction back."""
    _social("UNREACT", {"target_id": str(target), "kind": kind, "reactor_id": reactor and str(reactor)}, as_json)


@social_app.command("comment")
def comment(target: UUID, content: str, author: UUID = AsOption, as_json: bool = JsonOption) -> None:
    """Comment on a message or a piece of content (the comment is a `message` thing)."""
    from shared.contracts.graph.social import COMMENT

    reply = _request(COMMENT, {"target_id": str(target), "content": content, "author_id": author and str(author)})
    _show(reply, as_json, {"comment": str(reply.comment.id), "total_comments": reply.total_comments})


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else ""


REMINDER_COLUMNS = [Column("id", "id"), Column("to", "id"), Column("at"), Column("status"), Column("subject", "text")]


def _reminders(rows: list[Any]) -> None:
    print_table(REMINDER_COLUMNS, [(r.id, r.recipient_id, _when(r.remind_at), r.status, r.subject) for r in rows],
                empty="no reminders")


def _meeting(meeting: Any, as_json: bool) -> None:
    if as_json:
        print_json(meeting)
        return
    print_record({"id": str(meeting.id), "title": meeting.title, "status": meeting.status,
                  "start": _when(meeting.start_time), "end": _when(meeting.end_time),
                  "participants": [str(p) for p in meeting.participant_ids]})
    _reminders(meeting.reminders)


@meetings_app.command("schedule")
def schedule(
    title: str, start: datetime = typer.Option(..., help="With its zone: 2030-01-01T10:00:00+00:00."),
    end: datetime = typer.Option(...), participant: list[UUID] = typer.Option(None, help="Repeatable."),
    remind_before: list[int] = typer.Option(None, help="Seconds before the start (repeatable)."),
    as_json: bool = JsonOption,
) -> None:
    """Schedule a meeting with its participants and their reminders."""
    from shared.contracts.scheduling import MEETING_SCHEDULE

    _meeting(_request(MEETING_SCHEDULE, {
        "title": title, "start_time": start.isoformat(), "end_time": end.isoformat(),
        "participant_ids": [str(p) for p in participant or []], "remind_before": remind_before or []}), as_json)


@meetings_app.command("show")
def show(meeting: UUID, as_json: bool = JsonOption) -> None:
    from shared.contracts.scheduling import MEETING_GET

    _meeting(_request(MEETING_GET, {"id": str(meeting)}), as_json)


@meetings_app.command("reschedule")
def reschedule(meeting: UUID, start: datetime = typer.Option(...), end: datetime = typer.Option(...),
               as_json: bool = JsonOption) -> None:
    """New times; its reminders move with the start."""
    from shared.contracts.scheduling import MEETING_RESCHEDULE

    _meeting(_request(MEETING_RESCHEDULE, {"id": str(meeting), "start_time": start.isoformat(),
                                           "end_time": end.isoformat()}), as_json)


@meetings_app.command("cancel")
def cancel(meeting: UUID, as_json: bool = JsonOption) -> None:
    """Cancel it, and its reminders that have not fired."""
    from shared.contracts.scheduling import MEETING_CANCEL

    _meeting(_request(MEETING_CANCEL, {"id": str(meeting)}), as_json)


@reminders_app.command("add")
def add_reminder(message: str, at: datetime = typer.Option(..., help="With its zone."),
                 to: UUID = typer.Option(None, help="Unset: you."), as_json: bool = JsonOption) -> None:
    from shared.contracts.scheduling import REMINDER_CREATE

    reminder = _request(REMINDER_CREATE, {"message": message, "remind_at": at.isoformat(),
                                          "recipient_id": to and str(to)})
    _show(reminder, as_json, {"id": str(reminder.id), "at": _when(reminder.remind_at), "status": reminder.status})


@reminders_app.command("list")
def list_reminders(meeting: UUID = typer.Option(None), status: str = typer.Option(None),
                   as_json: bool = JsonOption) -> None:
    from shared.contracts.scheduling import REMINDER_LIST

    page = _request(REMINDER_LIST, {"meeting_id": meeting and str(meeting), "status": status})
    if as_json:
        print_json(page)
    else:
        _reminders(page.reminders)


@reminders_app.command("cancel")
def cancel_reminder(reminder: UUID, as_json: bool = JsonOption) -> None:
    from shared.contracts.scheduling import REMINDER_CANCEL

    done = _request(REMINDER_CANCEL, {"id": str(reminder)})
    _show(done, as_json, {"id": str(done.id), "status": done.status})
