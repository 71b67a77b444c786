"""Creating things: checked and planned first, then inserted in one statement, idempotently.

A create runs in three steps so that its handler can count the new things against the quota
between them, never while a transaction is open: `plan_creation` checks every request (no
I/O), `answer_repeats` answers the idempotency keys seen before (a short read), and
`insert_things` writes what is new, in the transaction the handler opens after the quota
allowed it.
"""

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from services.graph import keys, repository as repo
from services.graph.properties import mask_secrets
from services.graph.repository import QuotaUse
from services.graph.rows import NewThing, ThingRow
from services.graph.service import resolve_type, validate_properties
from services.graph.service_type_schemas import check_new_things
from shared.contracts.graph import IdempotencyConflict, InvalidTransition, ThingCreate
from shared.kernel.envelope import AuthContext
from shared.kernel.events import event_payload_json
from shared.kernel.ids import uuid7
from shared.kernel.ontology import THING_CATEGORIES, EventType, ThingStatus, ThingType
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext

_CREATED_EVENTS: dict[str, EventType] = {
    ThingType.COURSE.value: EventType.COURSE_CREATED,
    ThingType.AI_CLONE.value: EventType.CLONE_CREATED,
    ThingType.TOKEN.value: EventType.TOKEN_CREATED,
    **{t.value: EventType.AGENT_CREATED for t in THING_CATEGORIES["business_agents"]},
}
"""Thing types (by name, as a new thing holds its type) the spec gives a creation event of their own; the rest use
`entity_created`."""


def _request_hash(thing_type: ThingType, request: ThingCreate, properties: dict[str, Any]) -> str:
    # secrets masked: the stored hash must not let anyone test guesses of a secret
    body = json.dumps([thing_type.value, request.name, mask_secrets(properties), request.status.value,
                       *([[link.model_dump(mode="json") for link in request.connections]] if request.connections else [])],
                      sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


def _prepare(auth: AuthContext, request: ThingCreate) -> NewThing:
    thing_type, folded = resolve_type(request.type)
    properties = validate_properties(thing_type, {**request.properties, **folded} if folded else request.properties)
    if request.status is ThingStatus.ARCHIVED:
        raise InvalidTransition("a thing cannot be created archived")
    return NewThing(
        uuid7(), auth.org_id, thing_type.value, request.name, properties, request.status.value, 1,
        request.idempotency_key, _request_hash(thing_type, request, properties) if request.idempotency_key else None,
        auth.actor_id,
    )


def _check_same_request(earlier: ThingRow | NewThing, new: NewThing) -> None:
    """`earlier` answers `new` (same idempotency key), unless the key was used for a different thing."""
    if earlier.request_hash != new.request_hash:
        raise IdempotencyConflict(
            "this idempotency key was used for a different thing", {"idempotency_key": new.idempotency_key}
        )


@dataclass(slots=True)
class Creation:
    """A create request checked and planned, before anything is counted or written.

    `requested` holds one new thing per request, in order; a batch repeating a key shares its
    first use's. `stored` are the things stored earlier under a requested key: they answer
    those requests. What remains, `new`, is what to insert and what the quota must allow.
    """

    requested: list[NewThing]
    stored: dict[str, ThingRow] = field(default_factory=dict)
    new: list[NewThing] = field(init=False)

    def __post_init__(self) -> None:
        unique = {thing.id: thing for thing in self.requested}
        self.new = [thing for thing in unique.values() if thing.idempotency_key not in self.stored]

    @property
    def keys(self) -> list[str]:
        return [thing.idempotency_key for thing in self.new if thing.idempotency_key is not None]

    def answers(self, created: dict[UUID, ThingRow]) -> list[ThingRow]:
        """The stored thing that answers each request, given the row of each new thing (`created`, by its id)."""
        return [self.stored_for(thing) or created[thing.id] for thing in self.requested]

    def stored_for(self, thing: NewThing) -> ThingRow | None:
        return None if thing.idempotency_key is None else self.stored.get(thing.idempotency_key)


def plan_creation(ctx: WorkContext, requests: list[ThingCreate]) -> Creation:
    """Check every request (RBAC, type, properties) and fold the batch's own repeated keys; no I/O."""
    auth = ctx.auth
    require(auth, "things", "create")
    requested: list[NewThing] = []
    first_of_key: dict[str, NewThing] = {}
    for thing in (_prepare(auth, request) for request in requests):
        key = thing.idempotency_key
        if key is None:
            requested.append(thing)
        elif key in first_of_key:
            _check_same_request(first_of_key[key], thing)
            requested.append(first_of_key[key])
        else:
            first_of_key[key] = thing
            requested.append(thing)
    return Creation(requested)


async def answer_repeats(ctx: WorkContext, creation: Creation) -> Creation:
    """Answer the keys seen before with their stored things: those are not new, and count nothing."""
    stored = _by_key(await repo.things_by_keys(ctx.session, ctx.auth.org_id, creation.keys))
    answered = Creation(creation.requested, stored)
    for thing in creation.new:
        earlier = answered.stored_for(thing)
        if earlier is not None:
            _check_same_request(earlier, thing)
    return answered


def _by_key(rows: list[ThingRow]) -> dict[str, ThingRow]:
    return {row.idempotency_key: row for row in rows if row.idempotency_key is not None}


@dataclass(slots=True)
class Created:
    """What inserting a creation's new things gave: the stored thing answering each request (`Creation.answers`),
    and how many a concurrent request made first."""

    rows: list[ThingRow]
    lost: int


async def insert_things(ctx: WorkContext, creation: Creation, counted: QuotaUse | None = None) -> Created:
    """Insert the new things (recorded under the quota lease `counted`, if any) and stage their events.

    A key a concurrent request stored since `answer_repeats` looked is answered with that
    request's thing (or is a conflict, when it was for a different thing); the handler gives
    back the units it counted for those.
    """
    await check_new_things(ctx, creation.new)  # the org's own schema for the type (packs), read in this transaction
    await keys.seal_new_things(ctx, creation.new)  # secret properties never stored in clear
    events = ctx.event_messages([_created_event(thing) for thing in creation.new])  # staged with the rows they tell
    inserted = {row.id: row for row in await repo.insert_things(ctx.session, creation.new, counted, events)}
    created = dict(inserted)
    lost = [thing for thing in creation.new if thing.id not in inserted]
    if lost:
        lost_keys = [thing.idempotency_key or "" for thing in lost]  # only a keyed insert is ever skipped
        winners = _by_key(await repo.things_by_keys(ctx.session, ctx.auth.org_id, lost_keys))
        for thing, key in zip(lost, lost_keys, strict=True):
            _check_same_request(winners[key], thing)
            created[thing.id] = winners[key]
    return Created(creation.answers(created), len(lost))


def _created_event(thing: NewThing) -> tuple[str, bytes]:
    """The event that tells of a new thing: the type's own creation event, or `entity_created` (its payload's JSON
    made straight from the checked thing: a batch makes 500)."""
    payload = event_payload_json(thing.id, thing.type,
                                 {"entityType": thing.type, "name": thing.name, "status": thing.status})
    return _CREATED_EVENTS.get(thing.type, EventType.ENTITY_CREATED), payload
