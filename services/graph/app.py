"""The graph service's subscribers: each one hands its payload to the service layer."""

from services.graph import service, service_connections
from services.graph.models import Connection, Thing
from services.graph.schemas import (
    CONNECTION_CREATE,
    CONNECTION_DELETE,
    CONNECTION_END,
    CONNECTION_QUERY,
    CONNECTION_UPDATE,
    NEIGHBORS,
    THING_ARCHIVE,
    THING_CREATE,
    THING_CREATE_BATCH,
    THING_DELETE,
    THING_GET,
    THING_QUERY,
    THING_RESTORE,
    THING_UPDATE,
    ConnectionCreate,
    ConnectionEnd,
    ConnectionQuery,
    Connections,
    ConnectionTarget,
    ConnectionUpdate,
    Deleted,
    NeighborQuery,
    Neighbors,
    ThingCreate,
    ThingCreateBatch,
    ThingGet,
    ThingQuery,
    Things,
    ThingTarget,
    ThingUpdate,
    ThingWithRelated,
)
from shared import __version__
from shared.runtime.handlers import RequestContext, ServiceRouter
from shared.runtime.service import ServiceDefinition

router = ServiceRouter("graph")


@router.handler(THING_CREATE)
async def create_thing(ctx: RequestContext, payload: ThingCreate) -> Thing:
    return (await service.create_things(ctx, [payload]))[0]


@router.handler(THING_CREATE_BATCH)
async def create_things(ctx: RequestContext, payload: ThingCreateBatch) -> Things:
    return Things(things=await service.create_things(ctx, payload.things))


@router.handler(THING_GET)
async def get_thing(ctx: RequestContext, payload: ThingGet) -> ThingWithRelated:
    return await service_connections.get_with_related(ctx, payload.id, payload.include)


@router.handler(THING_UPDATE)
async def update_thing(ctx: RequestContext, payload: ThingUpdate) -> Thing:
    return await service.update_thing(ctx, payload)


@router.handler(THING_ARCHIVE)
async def archive_thing(ctx: RequestContext, payload: ThingTarget) -> Thing:
    return await service.archive_thing(ctx, payload.id)


@router.handler(THING_DELETE)
async def delete_thing(ctx: RequestContext, payload: ThingTarget) -> Thing:
    return await service.delete_thing(ctx, payload.id)


@router.handler(THING_RESTORE)
async def restore_thing(ctx: RequestContext, payload: ThingTarget) -> Thing:
    return await service.restore_thing(ctx, payload.id)


@router.handler(THING_QUERY)
async def query_things(ctx: RequestContext, payload: ThingQuery) -> Things:
    return await service.query_things(ctx, payload)


@router.handler(CONNECTION_CREATE)
async def create_connection(ctx: RequestContext, payload: ConnectionCreate) -> Connection:
    return await service_connections.create_connection(ctx, payload)


@router.handler(CONNECTION_UPDATE)
async def update_connection(ctx: RequestContext, payload: ConnectionUpdate) -> Connection:
    return await service_connections.update_connection(ctx, payload)


@router.handler(CONNECTION_END)
async def end_connection(ctx: RequestContext, payload: ConnectionEnd) -> Connection:
    return await service_connections.end_connection(ctx, payload)


@router.handler(CONNECTION_DELETE)
async def delete_connection(ctx: RequestContext, payload: ConnectionTarget) -> Deleted:
    return Deleted(id=await service_connections.delete_connection(ctx, payload.id))


@router.handler(CONNECTION_QUERY)
async def query_connections(ctx: RequestContext, payload: ConnectionQuery) -> Connections:
    return await service_connections.query_connections(ctx, payload)


@router.handler(NEIGHBORS)
async def neighbors(ctx: RequestContext, payload: NeighborQuery) -> Neighbors:
    return await service_connections.neighbors(ctx, payload)


definition = ServiceDefinition(name="graph", version=__version__, router=router)
