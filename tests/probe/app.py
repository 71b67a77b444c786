"""The probe service's handlers: echo, create/list notes, and a handler that crashes."""

from uuid import UUID

from pydantic import BaseModel
from sqlalchemy import text

from shared.kernel.envelope import Payload, Protocol, register_message
from shared.kernel.ids import uuid7
from shared.kernel.settings import Settings
from shared.runtime.context import WorkContext
from shared.runtime.handlers import ServiceRouter
from shared.runtime.service import ServiceDefinition, ServiceRuntime

SERVICE = "probe"


class Echo(Payload):
    text: str
    n: int = 0


class NoteCreate(Payload):
    body: str


class NoteRead(BaseModel):
    id: UUID
    org_id: UUID
    body: str


class NoteList(Payload):
    pass


class Notes(BaseModel):
    notes: list[NoteRead]


class Seen(BaseModel):
    """What a handler saw of the envelope it was called with."""

    envelope_id: UUID
    org_id: UUID | None
    actor_id: UUID | None
    role: str | None
    permissions: list[str]
    protocol: Protocol
    correlation_id: UUID | None
    causation_id: UUID | None


class Relayed(BaseModel):
    """A call made through `ctx.call`: the caller's own envelope, and what the callee saw."""

    caller: Seen
    callee: Seen


ECHO = register_message("probe.echo", "one.probe.echo", Echo, Echo, protocols=(Protocol.NATIVE, Protocol.A2A))
NOTE_CREATE = register_message("probe.note.create", "one.probe.notes.create", NoteCreate, NoteRead)
NOTE_LIST = register_message("probe.note.list", "one.probe.notes.list", NoteList, Notes)
CRASH = register_message("probe.crash", "one.probe.crash", NoteList, Notes)
SEEN = register_message("probe.seen", "one.probe.seen", NoteList, Seen, protocols=(Protocol.NATIVE, Protocol.A2A))
RELAY = register_message("probe.relay", "one.probe.relay", NoteList, Relayed, protocols=(Protocol.NATIVE, Protocol.A2A))

router = ServiceRouter(SERVICE)


@router.handler(ECHO, transactional=False)
async def echo(ctx: WorkContext, payload: Echo) -> Echo:
    ctx.auth  # echo still requires an auth context  # noqa: B018
    return payload


@router.handler(NOTE_CREATE)
async def create_note(ctx: WorkContext, payload: NoteCreate) -> NoteRead:
    note = NoteRead(id=uuid7(), org_id=ctx.auth.org_id, body=payload.body)
    await ctx.session.execute(
        text("INSERT INTO probe.notes (id, org_id, body) VALUES (:id, :org_id, :body)"), note.model_dump()
    )
    await ctx.emit("note_created", target_id=note.id, target_type="note", metadata={"length": len(note.body)})
    return note


@router.handler(NOTE_LIST)
async def list_notes_without_org_filter(ctx: WorkContext, _: NoteList) -> Notes:
    """Deliberately forgets `WHERE org_id = ...`: RLS must still confine it."""
    rows = (await ctx.session.execute(text("SELECT id, org_id, body FROM probe.notes ORDER BY id"))).all()
    return Notes(notes=[NoteRead(id=r.id, org_id=r.org_id, body=r.body) for r in rows])


@router.handler(CRASH)
async def crash(ctx: WorkContext, _: NoteList) -> Notes:
    raise RuntimeError("a bug with a secret stack trace")


def seen(ctx: WorkContext) -> Seen:
    e = ctx.envelope
    return Seen(envelope_id=e.id, org_id=e.org_id, actor_id=e.actor_id, role=e.role, permissions=list(e.permissions),
                protocol=e.protocol, correlation_id=e.correlation_id, causation_id=e.causation_id)


@router.handler(SEEN, transactional=False)
async def report_seen(ctx: WorkContext, _: NoteList) -> Seen:
    return seen(ctx)


@router.handler(RELAY, transactional=False)
async def relay(ctx: WorkContext, _: NoteList) -> Relayed:
    return Relayed(caller=seen(ctx), callee=await ctx.call(SEEN, NoteList()))


definition = ServiceDefinition(
    name=SERVICE, version="test", router=router, migrations="tests.probe.migrations", grants=("things:read",)
)


async def serve_router(router: ServiceRouter, settings: Settings, **overrides: object) -> ServiceRuntime:
    """Start a test's own router as a probe service (stop it with `.stop()`)."""
    own = ServiceDefinition(name=SERVICE, version="test", router=router, migrations="tests.probe.migrations")
    runtime = ServiceRuntime(own, settings.model_copy(update=overrides))
    await runtime.start(migrate=False)
    return runtime
