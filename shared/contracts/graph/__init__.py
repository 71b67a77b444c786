"""The graph service's public face: its messages, their payload and result models, and its errors.

Type names arrive as strings (not enums) so the service can resolve the spec's granular
aliases (`communicates_with`, `intent_mandate`) and answer an unknown name precisely.
Read models use the spec's field names in snake_case (`fromThingId` -> `from_id`,
`validFrom` -> `valid_from`); `properties` and `metadata` keep the spec's camelCase keys.
The errors refine the shared families, so callers can catch either.
"""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, StringConstraints

from shared.kernel import subjects
from shared.kernel.envelope import Payload, register_message
from shared.kernel.errors import Conflict, InvalidRequest, NotFound
from shared.kernel.ontology import ConnectionType, ThingStatus, ThingType


class GraphError(Exception):
    """Marker root: every error raised by the graph service's own rules."""


class InvalidProperties(GraphError, InvalidRequest):
    """`properties` do not match the structure the spec gives for the thing's type."""

    code = "invalid_properties"


class UnknownType(GraphError, InvalidRequest):
    """Neither a thing/connection type nor a granular alias of one."""

    code = "unknown_ontology_type"


class InvalidTransition(GraphError, Conflict):
    """The status change is not one `shared.kernel.ontology.STATUS_TRANSITIONS` allows."""

    code = "invalid_transition"


class VersionConflict(GraphError, Conflict):
    """The thing changed since the caller read it (`expected_version` is stale)."""

    code = "version_conflict"


class IdempotencyConflict(GraphError, Conflict):
    """The idempotency key was used before for a different request."""

    code = "idempotency_conflict"


class SelfLink(GraphError, InvalidRequest):
    """A connection from a thing to itself, for a type that does not allow it."""

    code = "self_link"


class ThingNotFound(GraphError, NotFound):
    pass


class ConnectionNotFound(GraphError, NotFound):
    pass


class Thing(BaseModel):
    """A thing as replies carry it: secrets in `properties` are masked."""

    id: UUID
    type: ThingType
    name: str
    properties: dict[str, Any]
    status: ThingStatus
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None


class Connection(BaseModel):
    id: UUID
    from_id: UUID
    to_id: UUID
    type: ConnectionType
    metadata: dict[str, Any]
    strength: float | None = None
    valid_from: datetime
    valid_to: datetime | None = None
    created_at: datetime
    updated_at: datetime


class Neighbor(BaseModel):
    """A thing reached by a traversal, with the fewest hops it took."""

    thing: Thing
    depth: int


TypeName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,60}$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=500, strip_whitespace=True)]
PropertyPath = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,7}$")]
Limit = Annotated[int, Field(ge=1, le=1000)]


class ThingLink(Payload):
    """A connection written with a new thing, in its transaction: an end left out is the new thing."""

    from_id: UUID | None = None
    to_id: UUID | None = None
    type: TypeName
    metadata: dict[str, Any] = Field(default_factory=dict)
    strength: float | None = Field(None, ge=0, le=1)


class ThingCreate(Payload):
    type: TypeName
    name: Name
    properties: dict[str, Any] = Field(default_factory=dict)
    status: ThingStatus = ThingStatus.DRAFT
    idempotency_key: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    connections: list[ThingLink] = Field(
        default_factory=list, max_length=100,
        description="Connections written with the thing, all or none (`connections:create` needed too); a repeat of "
                    "the idempotency key writes none again.",
    )


class ThingCreateBatch(Payload):
    things: list[ThingCreate] = Field(min_length=1, max_length=1000)


class ThingTarget(Payload):
    id: UUID


class ThingGet(ThingTarget):
    include: list[TypeName] = Field(
        default_factory=list, description="Connection types whose other ends come along (a course with its owner)."
    )


class ThingUpdate(Payload):
    id: UUID
    name: Name | None = None
    properties: dict[str, Any] | None = Field(None, description="Merged into the stored ones; a null value removes a key.")
    status: ThingStatus | None = None
    expected_version: int | None = Field(None, ge=1)


class PropertyFilter(Payload):
    path: PropertyPath
    op: Literal["eq", "ne", "gt", "gte", "lt", "lte", "contains", "exists"] = "eq"
    value: Any = None


class ThingQuery(Payload):
    type: TypeName | None = None
    status: ThingStatus | None = None
    text: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    where: list[PropertyFilter] = Field(default_factory=list, max_length=10)
    include_deleted: bool = False
    cursor: UUID | None = None
    limit: Limit = 100


class ConnectionCreate(Payload):
    from_id: UUID
    to_id: UUID
    type: TypeName
    metadata: dict[str, Any] = Field(default_factory=dict)
    strength: float | None = Field(None, ge=0, le=1)
    valid_from: datetime | None = None
    valid_to: datetime | None = None


class ConnectionTarget(Payload):
    id: UUID


class ConnectionUpdate(Payload):
    id: UUID
    metadata: dict[str, Any] | None = Field(None, description="Merged into the stored metadata; null removes a key.")
    strength: float | None = Field(None, ge=0, le=1)


class ConnectionEnd(Payload):
    id: UUID
    valid_to: datetime | None = Field(None, description="Unset = now.")


class ConnectionQuery(Payload):
    thing_id: UUID
    direction: Literal["out", "in", "both"] = "both"
    types: list[TypeName] = Field(default_factory=list)
    as_of: datetime | None = Field(None, description="Only connections valid at that instant; unset = all.")
    cursor: UUID | None = None
    limit: Limit = 100


class NeighborQuery(Payload):
    thing_id: UUID
    depth: Annotated[int, Field(ge=1, le=6)] = 1
    direction: Literal["out", "in", "both"] = "out"
    types: list[TypeName] = Field(default_factory=list)
    as_of: datetime | None = None
    limit: Limit = 1000


class Things(BaseModel):
    things: list[Thing]
    next_cursor: UUID | None = None


class Related(BaseModel):
    connection: Connection
    thing: Thing


class ThingWithRelated(BaseModel):
    thing: Thing
    related: list[Related] = Field(default_factory=list)


class Connections(BaseModel):
    connections: list[Connection]
    next_cursor: UUID | None = None


class Neighbors(BaseModel):
    neighbors: list[Neighbor]


class Deleted(BaseModel):
    id: UUID


class IdentityBackfill(Payload):
    all_organizations: bool = Field(False, description="Every organization, not just the caller's: platform owners only.")


class IdentitySynced(BaseModel):
    """What mirroring tenancy's identity (organizations, people, memberships) into the graph changed."""

    organizations: int = 0
    things_created: int = 0
    things_updated: int = 0
    connections_created: int = 0
    connections_updated: int = 0
    connections_ended: int = 0

    def add(self, other: "IdentitySynced") -> None:
        for name in IdentitySynced.model_fields:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _message(type_: str, verb: str, payload: type[Payload], result: type[BaseModel], permission: str) -> Any:
    return register_message(type_, subjects.command("graph", verb), payload, result, permission=permission)


THING_CREATE = _message("graph.thing.create", "things.create", ThingCreate, Thing, permission="things:create")
THING_CREATE_BATCH = _message(
    "graph.thing.create_batch", "things.create_batch", ThingCreateBatch, Things, permission="things:create"
)
THING_GET = _message("graph.thing.get", "things.get", ThingGet, ThingWithRelated, permission="things:read")
THING_UPDATE = _message("graph.thing.update", "things.update", ThingUpdate, Thing, permission="things:update")
THING_ARCHIVE = _message("graph.thing.archive", "things.archive", ThingTarget, Thing, permission="things:update")
THING_DELETE = _message("graph.thing.delete", "things.delete", ThingTarget, Thing, permission="things:delete")
THING_RESTORE = _message("graph.thing.restore", "things.restore", ThingTarget, Thing, permission="things:update")
THING_QUERY = _message("graph.thing.query", "things.query", ThingQuery, Things, permission="things:list")
CONNECTION_CREATE = _message(
    "graph.connection.create", "connections.create", ConnectionCreate, Connection, permission="connections:create"
)
CONNECTION_UPDATE = _message(
    "graph.connection.update", "connections.update", ConnectionUpdate, Connection, permission="connections:update"
)
CONNECTION_END = _message(
    "graph.connection.end", "connections.end", ConnectionEnd, Connection, permission="connections:update"
)
CONNECTION_DELETE = _message(
    "graph.connection.delete", "connections.delete", ConnectionTarget, Deleted, permission="connections:delete"
)
CONNECTION_QUERY = _message(
    "graph.connection.query", "connections.query", ConnectionQuery, Connections, permission="connections:read"
)
NEIGHBORS = _message("graph.neighbors", "neighbors", NeighborQuery, Neighbors, permission="things:read")
IDENTITY_BACKFILL = _message(
    "graph.identity.backfill", "identity.backfill", IdentityBackfill, IdentitySynced, permission="things:update"
)
