"""`one.things` and `one.connections`: the graph's things and the typed links between them.

    course = await one.things.create("course", "Beekeeping 101", properties={"title": "...", "price": 10, "currency": "USD"})
    await one.connections.create(creator.id, course.id, "owns", metadata={"revenueShare": 1.0})
    page = await one.things.query(type="course", where=[{"path": "price", "op": "gt", "value": 5}])
"""

from datetime import datetime
from typing import Any
from uuid import UUID

from shared.contracts.graph import (
    CONNECTION_CREATE,
    CONNECTION_DELETE,
    CONNECTION_END,
    CONNECTION_QUERY,
    CONNECTION_UPDATE,
    NEIGHBORS,
    THING_ARCHIVE,
    THING_CREATE,
    THING_DELETE,
    THING_GET,
    THING_QUERY,
    THING_RESTORE,
    THING_UPDATE,
    Connection,
    Connections,
    Deleted,
    Neighbors,
    Thing,
    Things,
    ThingWithRelated,
)
from shared.tools.sdk.namespace import Namespace


class Things(Namespace):
    async def create(self, type: str, name: str, *, properties: dict[str, Any] | None = None, status: str | None = None,
                     idempotency_key: str | None = None) -> Thing:
        return await self._call(THING_CREATE, type=type, name=name, properties=properties, status=status,
                                idempotency_key=idempotency_key)

    async def get(self, id: UUID, *, include: list[str] | None = None) -> ThingWithRelated:
        """The thing, with the other ends of its connections of the `include` types."""
        return await self._call(THING_GET, id=id, include=include)

    async def update(self, id: UUID, *, name: str | None = None, properties: dict[str, Any] | None = None,
                     status: str | None = None, expected_version: int | None = None) -> Thing:
        """Changes only what is given; `properties` merge into the stored ones (a None value removes a key)."""
        return await self._call(THING_UPDATE, id=id, name=name, properties=properties, status=status,
                                expected_version=expected_version)

    async def query(self, *, type: str | None = None, status: str | None = None, text: str | None = None,
                    where: list[dict[str, Any]] | None = None, include_deleted: bool | None = None,
                    cursor: UUID | None = None, limit: int | None = None) -> Things:
        """`where`: property filters `{"path": "price", "op": "gt", "value": 10}`; page on with `cursor=next_cursor`."""
        return await self._call(THING_QUERY, type=type, status=status, text=text, where=where,
                                include_deleted=include_deleted, cursor=cursor, limit=limit)

    async def archive(self, id: UUID) -> Thing:
        return await self._call(THING_ARCHIVE, id=id)

    async def delete(self, id: UUID) -> Thing:
        """Soft-deletes the thing (and hides its connections); `restore` brings both back."""
        return await self._call(THING_DELETE, id=id)

    async def restore(self, id: UUID) -> Thing:
        return await self._call(THING_RESTORE, id=id)

    async def neighbors(self, thing_id: UUID, *, depth: int | None = None, direction: str | None = None,
                        types: list[str] | None = None, as_of: datetime | None = None, limit: int | None = None) -> Neighbors:
        return await self._call(NEIGHBORS, thing_id=thing_id, depth=depth, direction=direction, types=types,
                                as_of=as_of, limit=limit)


class Connections(Namespace):
    async def create(self, from_id: UUID, to_id: UUID, type: str, *, metadata: dict[str, Any] | None = None,
                     strength: float | None = None, valid_from: datetime | None = None,
                     valid_to: datetime | None = None) -> Connection:
        return await self._call(CONNECTION_CREATE, from_id=from_id, to_id=to_id, type=type, metadata=metadata,
                                strength=strength, valid_from=valid_from, valid_to=valid_to)

    async def query(self, thing_id: UUID, *, direction: str | None = None, types: list[str] | None = None,
                    as_of: datetime | None = None, cursor: UUID | None = None, limit: int | None = None) -> Connections:
        return await self._call(CONNECTION_QUERY, thing_id=thing_id, direction=direction, types=types, as_of=as_of,
                                cursor=cursor, limit=limit)

    async def update(self, id: UUID, *, metadata: dict[str, Any] | None = None, strength: float | None = None) -> Connection:
        return await self._call(CONNECTION_UPDATE, id=id, metadata=metadata, strength=strength)

    async def end(self, id: UUID, *, valid_to: datetime | None = None) -> Connection:
        """Closes the connection's validity (now, unless `valid_to`): history keeps it."""
        return await self._call(CONNECTION_END, id=id, valid_to=valid_to)

    async def delete(self, id: UUID) -> Deleted:
        return await self._call(CONNECTION_DELETE, id=id)
