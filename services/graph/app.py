"""The graph service's subscribers: each one hands its payload to the service layer.

Most run in the transaction the router opens. The handlers that add or remove live things do not:
they count them against tenancy's quota over the bus (`quota`: a reservation before their late
transaction opens, settled after it commits), never while it holds a connection and row locks.
"""

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from services.graph import (
    access,
    identity,
    keys_backlog,
    quota,
    replica,
    service,
    service_connections,
    service_create,
    service_type_schemas,
)
from services.graph.app_access import router as access_router
from services.graph.app_social import router as social_router
from services.graph.rows import ThingRow
from services.graph.settings import GraphSettings
from shared import __version__
from shared.contracts.graph import (
    CONNECTION_CREATE,
    CONNECTION_DELETE,
    CONNECTION_END,
    CONNECTION_QUERY,
    CONNECTION_UPDATE,
    IDENTITY_BACKFILL,
    NEIGHBORS,
    THING_ARCHIVE,
    THING_CREATE,
    THING_CREATE_BATCH,
    THING_DELETE,
    THING_GET,
    THING_QUERY,
    THING_RESTORE,
    THING_UPDATE,
    Connection,
    ConnectionCreate,
    ConnectionEnd,
    ConnectionQuery,
    Connections,
    ConnectionTarget,
    ConnectionUpdate,
    Deleted,
    IdentityBackfill,
    IdentitySynced,
    NeighborQuery,
    Neighbors,
    Thing,
    ThingCreate,
    ThingCreateBatch,
    ThingGet,
    ThingQuery,
    Things,
    ThingTarget,
    ThingUpdate,
    ThingWithRelated,
)
from shared.contracts.graph.schemas import (
    TYPE_SCHEMA_LIST,
    TYPE_SCHEMA_REMOVE,
    TYPE_SCHEMA_SET,
    TypeSchemaRemoval,
    TypeSchemaRemove,
    TypeSchemas,
    TypeSchemaSaved,
    TypeSchemaSet,
)
from shared.contracts.keys import KeysRotated, keys_rotate_spec
from shared.kernel.envelope import Empty, Encoded
from shared.kernel.errors import QuotaExceeded
from shared.kernel.rbac import require
from shared.runtime import keyring
from shared.runtime.context import WorkContext
from shared.runtime.handlers import ServiceRouter
from shared.runtime.service import ServiceDefinition

router = ServiceRouter("graph")
Then = Callable[[WorkContext, list[Thing]], Awaitable[None]]


@router.handler(THING_CREATE, transactional=False)
async def create_thing(ctx: WorkContext, payload: ThingCreate) -> Thing:
    return service.to_thing((await _create(ctx, [payload]))[0])


@router.handler(THING_CREATE_BATCH, transactional=False)
async def create_things(ctx: WorkContext, payload: ThingCreateBatch) -> Encoded[Things]:
    """The reply is encoded straight from the rows (`Things` on the caller's side): no model per thing."""
    rows = await _create(ctx, payload.things)
    return Encoded.plain({"things": [service.thing_data(row) for row in rows], "next_cursor": None})


async def _create(ctx: WorkContext, requests: list[ThingCreate], then: Then | None = None) -> list[ThingRow]:
    """Reserve a quota unit per new thing; then, in one transaction, answer the idempotency keys seen before and
    insert the rest with their connections; settle the units really used (`quota`): none if the insert fails, fewer
    when a key was answered or a concurrent request with the same key created first. At the quota's limit, the keys
    are answered first, in a transaction of their own: a repeat is answered, never refused.
    `then` runs in the insert's transaction with the things (a comment links and counts its message).
    The stored thing answering each request, in order."""
    creation = service_create.plan_creation(ctx, requests)
    links = _plan_links(ctx, creation, requests)
    try:
        hold = await quota.reserve(ctx, len(creation.new))
    except QuotaExceeded:
        if not creation.keys:
            raise
        async with ctx.transaction() as tx:
            creation = await service_create.answer_repeats(tx, creation)
        if not creation.new:
            return creation.answers({})
        hold = await quota.reserve(ctx, len(creation.new))
    try:
        async with ctx.transaction() as tx:
            if creation.keys:
                creation = await service_create.answer_repeats(tx, creation)
            if not creation.new:
                rows, lost = creation.answers({}), 0
            else:
                created = await service_create.insert_things(tx, creation, quota.counted_under(tx, hold))
                rows, lost = created.rows, created.lost
                written = {row.id for row in rows}  # a new thing's own id only if this request inserted it
                if planned := [values for thing_id, values in links if thing_id in written]:
                    await service_connections.insert_connections(tx, planned)
                if then is not None:
                    await then(tx, [service.to_thing(row) for row in rows])
    except BaseException:
        await quota.settle(ctx, hold, 0, committed=False)
        raise
    await quota.settle(ctx, hold, len(creation.new) - lost)
    return rows


def _plan_links(ctx: WorkContext, creation: service_create.Creation, requests: list[ThingCreate]
                ) -> list[tuple[UUID, dict[str, Any]]]:
    """Each new thing's connections (`ThingCreate.connections`), checked before anything is counted or written, with
    the id it is about to get for the ends left out; a batch repeating a key plans that thing's links once."""
    planned: list[tuple[UUID, dict[str, Any]]] = []
    seen: set[UUID] = set()
    for thing, request in zip(creation.requested, requests, strict=True):
        if not request.connections or thing.id in seen:
            continue
        require(ctx.auth, "connections", "create")
        seen.add(thing.id)
        planned += [(thing.id, service_connections.plan_connection(
            ctx, link.from_id or thing.id, link.to_id or thing.id, link.type, link.metadata, link.strength))
            for link in request.connections]
    return planned


@router.handler(THING_GET)
async def get_thing(ctx: WorkContext, payload: ThingGet) -> ThingWithRelated:
    return await service_connections.get_with_related(ctx, payload.id, payload.include)


@router.handler(THING_UPDATE)
async def update_thing(ctx: WorkContext, payload: ThingUpdate) -> Thing:
    return await service.update_thing(ctx, payload)


@router.handler(THING_ARCHIVE)
async def archive_thing(ctx: WorkContext, payload: ThingTarget) -> Thing:
    return await service.archive_thing(ctx, payload.id)


@router.handler(THING_DELETE, transactional=False)
async def delete_thing(ctx: WorkContext, payload: ThingTarget) -> Thing:
    """The deleted thing's quota unit goes back once the delete has committed."""
    async with ctx.transaction() as tx:
        deleted = await service.delete_thing(tx, payload.id)
    await quota.give_back(ctx, 1)
    return deleted


@router.handler(THING_RESTORE, transactional=False)
async def restore_thing(ctx: WorkContext, payload: ThingTarget) -> Thing:
    """A restored thing takes a quota unit again: reserved before the restore's transaction, settled as
    unused if it fails or if a concurrent restore brought the thing back first."""
    async with ctx.transaction() as tx:
        found = await service.thing_to_restore(tx, payload.id)
    if found.deleted_at is None:
        return found
    hold = await quota.reserve(ctx, 1)
    try:
        async with ctx.transaction() as tx:
            restoration = await service.restore_thing(tx, payload.id)
            await quota.hold_in(tx, hold, int(restoration.restored))
    except BaseException:
        await quota.settle(ctx, hold, 0, committed=False)
        raise
    await quota.settle(ctx, hold, int(restoration.restored))
    return restoration.thing


@router.handler(THING_QUERY)
async def query_things(ctx: WorkContext, payload: ThingQuery) -> Things:
    return await service.query_things(ctx, payload)


@router.handler(CONNECTION_CREATE)
async def create_connection(ctx: WorkContext, payload: ConnectionCreate) -> Connection:
    return await service_connections.create_connection(ctx, payload)


@router.handler(CONNECTION_UPDATE)
async def update_connection(ctx: WorkContext, payload: ConnectionUpdate) -> Connection:
    return await service_connections.update_connection(ctx, payload)


@router.handler(CONNECTION_END)
async def end_connection(ctx: WorkContext, payload: ConnectionEnd) -> Connection:
    return await service_connections.end_connection(ctx, payload)


@router.handler(CONNECTION_DELETE)
async def delete_connection(ctx: WorkContext, payload: ConnectionTarget) -> Deleted:
    return Deleted(id=await service_connections.delete_connection(ctx, payload.id))


@router.handler(CONNECTION_QUERY)
async def query_connections(ctx: WorkContext, payload: ConnectionQuery) -> Connections:
    return await service_connections.query_connections(ctx, payload)


@router.handler(NEIGHBORS, transactional=False)  # its own transaction, with a statement timeout
async def neighbors(ctx: WorkContext, payload: NeighborQuery) -> Encoded[Neighbors]:
    return await service_connections.neighbors(ctx, payload)


@router.handler(IDENTITY_BACKFILL, transactional=False)
async def backfill_identity(ctx: WorkContext, payload: IdentityBackfill) -> IdentitySynced:
    """Mirror tenancy's existing orgs, people and memberships (the consumer keeps them current from then on)."""
    require(ctx.auth, "things", "update")
    require(ctx.auth, "connections", "update")
    return await identity.backfill(ctx, payload.all_organizations)


@router.handler(TYPE_SCHEMA_SET, transactional=False)
async def set_type_schema(ctx: WorkContext, payload: TypeSchemaSet) -> TypeSchemaSaved:
    return await access.change(ctx, lambda tx: service_type_schemas.set_type_schema(tx, payload))


@router.handler(TYPE_SCHEMA_REMOVE, transactional=False)
async def remove_type_schema(ctx: WorkContext, payload: TypeSchemaRemove) -> TypeSchemaRemoval:
    return await access.change(ctx, lambda tx: service_type_schemas.remove_type_schema(tx, payload))


@router.handler(TYPE_SCHEMA_LIST)
async def list_type_schemas(ctx: WorkContext, payload: Empty) -> TypeSchemas:
    return await service_type_schemas.list_type_schemas(ctx)


router.include(social_router)
router.include(keyring.rotation_router("graph", keys_rotate_spec("graph"), KeysRotated))
router.include(access_router)

definition = ServiceDefinition(
    name="graph", version=__version__, router=router, settings=GraphSettings,
    grants=("identity:read", "things:update", "connections:update", "quotas:consume"),
    on_start=[keys_backlog.start, replica.start, access.start], on_stop=[replica.stop, access.stop, keyring.close],
)
"""`grants`: the identity mirror reads tenancy's snapshot and writes its things and connections; the quota
settler settles reservations a dead replica left behind."""
