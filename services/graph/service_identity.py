"""Tenancy's organizations, people and memberships, mirrored in the graph with the same ids.

Tenancy stays the authority (DESIGN.md, "Identity across services"); the graph keeps, per org,
a thing for the org (`organization`, id = the org's id), one per member (`creator`, or
`audience_member` for a customer; id = the person's id, in every org they belong to) and one
open `member_of` connection per membership, with the spec's metadata (role, permissions,
invitedBy, invitedAt, joinedAt).

`reconcile` brings an org's mirror to a snapshot of tenancy as it stands now, so it is
idempotent and replay-safe by construction: a replayed or out-of-order event reconciles to the
same state and writes nothing twice. A changed profile or role updates the thing and the
connection in place; a removed member's connection is ended (`valid_to`), never deleted, and
the person's thing stays. Every write is logged as the graph's usual event, with
`metadata.source = "tenancy"`. These things are the org's identity, not its content: they
count against no things quota.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from services.graph import repository as repo, repository_identity as identity_repo
from services.graph.rows import ConnectionRow, NewThing, ThingRow
from services.graph.service import validate_properties
from services.graph.service_connections import emit_connection_event
from shared.contracts.graph import IdentitySynced
from shared.contracts.tenancy import IdentitySnapshot, MemberIdentity, OrgIdentity
from shared.kernel.ids import uuid7
from shared.kernel.ontology import ConnectionType, EventType, Role, ThingStatus, ThingType
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext

SOURCE = {"source": "tenancy"}
_CREATOR_ROLES = frozenset({Role.PLATFORM_OWNER.value, Role.ORG_OWNER.value, Role.ORG_USER.value})


@dataclass(frozen=True, slots=True)
class Mirror:
    """What a thing mirroring tenancy should be."""

    id: UUID
    type: ThingType
    name: str
    properties: dict[str, Any]
    status: ThingStatus


def org_mirror(org: OrgIdentity) -> Mirror:
    status = ThingStatus.ACTIVE if org.status in ("active", "trial") else ThingStatus.INACTIVE
    properties = {"slug": org.slug, "domain": org.domain, "status": org.status, "plan": org.plan,
                  "installedPacks": org.installed_packs or None}  # None: the key goes (no packs, or none left)
    return Mirror(org.id, ThingType.ORGANIZATION, org.name, properties, status)


def person_mirror(member: MemberIdentity, org_id: UUID) -> Mirror:
    """A customer is an `audience_member`; anyone else a `creator` (an org's own roles count as `org_user`)."""
    if member.role == Role.CUSTOMER:
        properties: dict[str, Any] = {"email": member.email, "username": member.username, "role": "customer",
                                      "displayName": member.display_name}
        return Mirror(member.person_id, ThingType.AUDIENCE_MEMBER, member.display_name, properties, ThingStatus.ACTIVE)
    properties = {
        "email": member.email, "username": member.username, "displayName": member.display_name, "bio": member.bio,
        "avatar": member.avatar, "role": member.role if member.role in _CREATOR_ROLES else Role.ORG_USER.value,
        "organizationId": str(org_id),
    }
    return Mirror(member.person_id, ThingType.CREATOR, member.display_name, properties, ThingStatus.ACTIVE)


def membership_metadata(member: MemberIdentity) -> dict[str, Any]:
    """The spec's `member_of` metadata."""
    metadata = {
        "role": member.role, "permissions": member.permissions, "joinedAt": member.joined_at.isoformat(),
        "invitedBy": str(member.invited_by) if member.invited_by else None,
        "invitedAt": member.invited_at.isoformat() if member.invited_at else None,
    }
    return {key: value for key, value in metadata.items() if value is not None}


async def reconcile(ctx: WorkContext, snapshot: IdentitySnapshot) -> IdentitySynced:
    """Make the org's mirror match `snapshot` (the org of `ctx`); in the caller's transaction, under the org's lock."""
    require(ctx.auth, "things", "update")
    require(ctx.auth, "connections", "update")
    org_id = ctx.auth.org_id
    outcome = IdentitySynced(organizations=1)
    await identity_repo.lock_org_identity(ctx.session, org_id)
    mirrors = [org_mirror(snapshot.organization), *(person_mirror(m, org_id) for m in snapshot.members)]
    stored = await identity_repo.things_by_ids(ctx.session, org_id, [mirror.id for mirror in mirrors])
    for mirror in mirrors:
        await _mirror_thing(ctx, stored.get(mirror.id), mirror, outcome)
    open_memberships = {row.from_id: row for row in await identity_repo.open_memberships(ctx.session, org_id)}
    for member in snapshot.members:
        await _mirror_membership(ctx, open_memberships.pop(member.person_id, None), member, outcome)
    for ended in open_memberships.values():
        await _end(ctx, ended, outcome)
    return outcome


async def _mirror_thing(ctx: WorkContext, row: ThingRow | None, mirror: Mirror, outcome: IdentitySynced) -> None:
    if row is None:
        properties = validate_properties(mirror.type, mirror.properties)
        new = NewThing(mirror.id, ctx.auth.org_id, mirror.type.value, mirror.name, properties, mirror.status.value, 1,
                       None, None)
        await repo.insert_things(ctx.session, [new])
        await ctx.emit(EventType.ENTITY_CREATED, target_id=mirror.id, target_type=mirror.type.value,
                       metadata={"entityType": mirror.type.value, "name": mirror.name, **SOURCE})
        outcome.things_created += 1
        return
    same_type = row.type == mirror.type.value
    merged = {**row.properties, **mirror.properties} if same_type else dict(mirror.properties)
    properties = validate_properties(mirror.type, {k: v for k, v in merged.items() if v is not None})
    values: dict[str, Any] = {}
    if row.name != mirror.name:
        values["name"] = mirror.name
    if properties != row.properties:
        values["properties"] = properties
    if not same_type:
        values["type"] = mirror.type.value
    if row.status != mirror.status.value and row.status != ThingStatus.ARCHIVED:
        values["status"] = mirror.status.value
    if not values:
        return
    updated = await repo.update_thing(ctx.session, ctx.auth.org_id, row.id, values, None)
    await ctx.emit(EventType.ENTITY_UPDATED, target_id=row.id, target_type=mirror.type.value,
                   metadata={"entityType": mirror.type.value, "changes": sorted(values), "version": updated.version,
                             **SOURCE})
    outcome.things_updated += 1


async def _mirror_membership(
    ctx: WorkContext, row: ConnectionRow | None, member: MemberIdentity, outcome: IdentitySynced
) -> None:
    metadata = membership_metadata(member)
    org_id = ctx.auth.org_id
    if row is None:
        row = await repo.insert_connection(ctx.session, {
            "id": uuid7(), "org_id": org_id, "from_id": member.person_id, "to_id": org_id,
            "type": ConnectionType.MEMBER_OF.value, "metadata": metadata,
            "valid_from": min(member.joined_at, datetime.now(UTC)),
        })
        await emit_connection_event(ctx, EventType.ENTITY_CREATED, row,
                                    {"fromId": str(row.from_id), "toId": str(row.to_id), **SOURCE})
        outcome.connections_created += 1
    elif row.metadata != metadata:
        row = await repo.update_connection(ctx.session, org_id, row.id, {"metadata": metadata})
        await emit_connection_event(ctx, EventType.ENTITY_UPDATED, row, {"changes": ["metadata"], **SOURCE})
        outcome.connections_updated += 1


async def _end(ctx: WorkContext, row: ConnectionRow, outcome: IdentitySynced) -> None:
    valid_to = max(datetime.now(UTC), row.valid_from)
    updated = await repo.update_connection(ctx.session, ctx.auth.org_id, row.id, {"valid_to": valid_to})
    await emit_connection_event(ctx, EventType.ENTITY_UPDATED, updated,
                                {"changes": ["valid_to"], "validTo": valid_to.isoformat(), **SOURCE})
    outcome.connections_ended += 1

