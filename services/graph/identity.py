"""Keeping the graph's mirror of tenancy's identity current: a durable consumer of tenancy's events, and a backfill.

Any event saying an org, a membership or a profile changed makes the graph reconcile that org
with a fresh `tenancy.identity.snapshot` (`service_identity.reconcile`); a profile change also
reconciles every other org of that person. Each batch reconciles each org once, acks only after
it committed (`shared.runtime.consumer`), and a replay reconciles to the same state. All of it
is the graph's own work (`runtime.background`, caused by the event), logged as events.
"""

import logging
from uuid import UUID

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from services.graph import service_identity
from shared.contracts.graph import IdentitySynced
from shared.contracts.tenancy import IDENTITY_SNAPSHOT, ORG_LIST, OrganizationNotFound
from shared.kernel import subjects
from shared.kernel.envelope import Envelope
from shared.kernel.errors import Forbidden
from shared.kernel.ontology import EventType
from shared.runtime.consumer import ConsumerPolicy, DurableConsumer, Poison
from shared.runtime.context import WorkContext
from shared.runtime.service import ServiceRuntime

log = logging.getLogger(__name__)

IDENTITY_EVENTS = (
    EventType.ORGANIZATION_CREATED, EventType.ORGANIZATION_UPDATED, EventType.USER_JOINED_ORG,
    EventType.USER_REMOVED_FROM_ORG, EventType.PROFILE_UPDATED, EventType.ENTITY_UPDATED,
)
"""Tenancy's events about orgs, memberships and profiles; `entity_updated` only for a `member_of` (a role change)."""
_CONSUMER = "graph-identity"


def org_of_interest(event: Envelope) -> tuple[UUID, UUID | None] | None:
    """(org to reconcile, person whose other orgs to reconcile too) for an identity event; None for anything else."""
    if event.org_id is None:
        return None
    target_type = event.payload.get("target_type")
    if event.type == EventType.ENTITY_UPDATED and target_type != "member_of":
        return None
    if event.type == EventType.PROFILE_UPDATED:
        target = event.payload.get("target_id")
        return event.org_id, UUID(str(target)) if target else None
    return event.org_id, None


async def sync_org(runtime: ServiceRuntime, org_id: UUID, person_id: UUID | None = None,
                   cause: Envelope | None = None) -> tuple[IdentitySynced, list[UUID]]:
    """Reconcile one org now; with `person_id`, also the person's orgs (returned, for the caller to reconcile)."""
    ctx = runtime.background(org_id, cause=cause)
    try:
        snapshot = await ctx.call(IDENTITY_SNAPSHOT, {"person_id": person_id})
    except OrganizationNotFound:
        log.warning("identity of org %s: no such organization in tenancy; nothing mirrored", org_id)
        return IdentitySynced(), []
    async with ctx.transaction() as tx:
        outcome = await service_identity.reconcile(tx, snapshot)
    return outcome, [org for org in snapshot.person_orgs if org != org_id]


async def sync_orgs(
    runtime: ServiceRuntime, wanted: dict[UUID, set[UUID]], causes: dict[UUID, Envelope] | None = None,
    cause: Envelope | None = None,
) -> IdentitySynced:
    """Reconcile each org once (and each changed person's other orgs), in order of arrival; each org's work is
    caused by the latest event about it (`causes`), else by `cause`."""
    causes = causes or {}
    total = IdentitySynced()
    done: set[UUID] = set()
    queue = list(wanted.items())
    while queue:
        org_id, people = queue.pop(0)
        if org_id in done:
            continue
        done.add(org_id)
        why = causes.get(org_id, cause)
        outcome, others = await sync_org(runtime, org_id, next(iter(people), None), why)
        total.add(outcome)
        for person in list(people)[1:]:
            _, more = await sync_org(runtime, org_id, person, why)
            others += more
        for other in others:
            if other not in done:
                if why is not None:
                    causes.setdefault(other, why)
                queue.append((other, set()))
    return total


async def backfill(ctx: WorkContext, all_organizations: bool) -> IdentitySynced:
    """Mirror existing data: the caller's org, or (platform owners) every org tenancy lists."""
    orgs = [ctx.auth.org_id]
    if all_organizations:
        if ctx.auth.role != "platform_owner":
            raise Forbidden("only a platform owner backfills every organization")
        orgs, offset = [], 0
        while page := (await ctx.call(ORG_LIST, {"limit": 1000, "offset": offset})).organizations:
            orgs += [org.id for org in page]
            offset += len(page)
    return await sync_orgs(ctx.runtime, {org: set() for org in orgs}, cause=ctx.envelope)


class IdentityConsumer:
    """Tenancy's identity events -> reconciled orgs, on the platform's one durable consumer."""

    def __init__(self, runtime: ServiceRuntime) -> None:
        self.runtime = runtime
        settings = runtime.settings
        self.consumer = DurableConsumer(
            "graph",
            ConsumerPolicy(
                durable=_CONSUMER,
                subjects=tuple(subjects.events_filter(event_type=t.value) for t in IDENTITY_EVENTS),
                stream=settings.events_stream,
                batch_size=200,
                fetch_wait=0.2,
            ),
            self._reconcile,
        )

    async def start(self, nc: NatsClient) -> None:
        await self.consumer.start(nc)

    async def stop(self) -> None:
        await self.consumer.stop()

    async def _reconcile(self, msgs: list[Msg], _: list[Msg]) -> list[Poison]:
        wanted: dict[UUID, set[UUID]] = {}
        causes: dict[UUID, Envelope] = {}
        refused: list[Poison] = []
        for msg in msgs:
            if msg.subject.endswith(f".{EventType.ENTITY_UPDATED.value}") and b'"member_of"' not in msg.data:
                continue  # the graph's own thing updates: not identity, not worth decoding
            try:
                event = Envelope.model_validate_json(msg.data)
            except ValueError as error:
                refused.append(Poison(msg, "malformed_envelope", f"not an envelope: {error}"[:500]))
                continue
            interest = org_of_interest(event)
            if interest is not None:
                org_id, person_id = interest
                wanted.setdefault(org_id, set()).update({person_id} if person_id else set())
                causes[org_id] = event
        if wanted:
            await sync_orgs(self.runtime, wanted, causes)
        return refused
