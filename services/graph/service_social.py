"""Follows, reactions and comments: ontology connections whose counts live on the things they join.

Each change writes its connection and moves its counters in one transaction, the counters by one atomic
UPDATE each (repository_social.py), and only when the connection really changed: following twice finds the
live `following` link (a unique partial index) and counts nothing; unfollowing what is not followed is a
no-op too. So `totalFollowers` equals the live follows under any concurrency. No SQL here and no bus calls.

The actor is the caller (a person's thing has the person's id); acting for another person or agent
(`follower_id`, `reactor_id`, `author_id`) needs `social:act_as`.
"""

from typing import Any
from uuid import UUID

from services.graph import repository as graph_repo, repository_social as repo
from services.graph.repository_social import Bump
from services.graph.rows import ConnectionRow
from services.graph.service_connections import emit_connection_event, to_connection
from shared.contracts.graph import Thing, ThingCreate, ThingNotFound
from shared.contracts.graph.social import (
    CommentCreate,
    Commented,
    Followed,
    FollowRequest,
    Reacted,
    ReactionRequest,
)
from shared.kernel.errors import InvalidRequest
from shared.kernel.ids import uuid7
from shared.kernel.ontology import THING_CATEGORIES, ConnectionType, EventType, ThingStatus, ThingType
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext

PEOPLE_AND_AGENTS = frozenset({
    ThingType.CREATOR, ThingType.AUDIENCE_MEMBER, ThingType.AI_CLONE, ThingType.EXTERNAL_AGENT,
    *THING_CATEGORIES["business_agents"],
})
"""What can follow, be followed, react and comment (seed 002: `follows` between users and agents)."""
REACTABLE = frozenset({*THING_CATEGORIES["content"], *THING_CATEGORIES["community"], ThingType.LIVESTREAM,
                       ThingType.RECORDING, ThingType.MEDIA_ASSET})
"""Messages and content: what reactions and comments attach to."""

FOLLOWERS, FOLLOWING = "totalFollowers", "totalFollowing"
REACTIONS, REACTION_COUNTS, COMMENTS = "totalReactions", "reactionCounts", "totalComments"


def _actor(ctx: WorkContext, given: UUID | None) -> UUID:
    if given is None or given == ctx.auth.actor_id:
        if ctx.auth.actor_id is None:
            raise InvalidRequest("no actor: name who acts (follower_id, reactor_id or author_id)")
        return ctx.auth.actor_id
    require(ctx.auth, "social", "act_as")
    return given


async def _check_ends(ctx: WorkContext, actor: UUID, actor_types: frozenset[ThingType], target: UUID,
                      target_types: frozenset[ThingType], role: str) -> None:
    found = await repo.live_types(ctx.session, ctx.auth.org_id, [actor, target])
    for end, allowed, what in ((actor, actor_types, "the actor"), (target, target_types, role)):
        if end not in found:  # also what another org's thing looks like
            raise ThingNotFound(f"no thing {end} in this organization", {"id": str(end)})
        if ThingType(found[end]) not in allowed:
            raise InvalidRequest(f"{what} cannot be a {found[end]}",
                                 {"id": str(end), "type": found[end], "allowed": sorted(allowed)})
    if actor == target:
        raise InvalidRequest("a thing cannot follow or react to itself", {"id": str(actor)})


def _link(ctx: WorkContext, from_id: UUID, to_id: UUID, type_: ConnectionType,
          metadata: dict[str, Any]) -> dict[str, Any]:
    return {"id": uuid7(), "org_id": ctx.auth.org_id, "from_id": from_id, "to_id": to_id, "type": type_.value,
            "metadata": metadata}


def _count(properties: dict[str, Any], key: str) -> int:
    value = properties.get(key, 0)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


async def follow(ctx: WorkContext, request: FollowRequest, *, on: bool) -> Followed:
    require(ctx.auth, "social", "create" if on else "delete")
    follower = _actor(ctx, request.follower_id)
    await _check_ends(ctx, follower, PEOPLE_AND_AGENTS, request.followee_id, PEOPLE_AND_AGENTS, "the followee")
    org, followee = ctx.auth.org_id, request.followee_id
    if on:
        row = await repo.insert_live_link(ctx.session, _link(ctx, follower, followee, ConnectionType.FOLLOWING, {}))
    else:
        row = await repo.end_live_link(ctx.session, org, follower, followee, ConnectionType.FOLLOWING.value)
    if row is None:
        counts = await repo.properties_of(ctx.session, org, [follower, followee])
        return Followed(connection=None, changed=False, total_followers=_count(counts[followee], FOLLOWERS),
                        total_following=_count(counts[follower], FOLLOWING))
    await _emit_link(ctx, row, on, {"followerId": str(follower), "followeeId": str(followee)})
    delta = 1 if on else -1  # the hot rows last: their locks are held from here to the commit
    counts = await repo.bump(ctx.session, org, [Bump(followee, FOLLOWERS, delta), Bump(follower, FOLLOWING, delta)])
    return Followed(connection=to_connection(row), changed=True, total_followers=_count(counts[followee], FOLLOWERS),
                    total_following=_count(counts[follower], FOLLOWING))


async def _emit_link(ctx: WorkContext, row: ConnectionRow, on: bool, extra: dict[str, Any]) -> None:
    if on:
        ends = {"fromId": str(row.from_id), "toId": str(row.to_id)}
        await emit_connection_event(ctx, EventType.ENTITY_CREATED, row, {**ends, **extra})
    else:
        await emit_connection_event(ctx, EventType.ENTITY_UPDATED, row, {
            "changes": ["valid_to"], "validTo": row.valid_to.isoformat() if row.valid_to else None, **extra})


async def react(ctx: WorkContext, request: ReactionRequest, *, on: bool) -> Reacted:
    require(ctx.auth, "social", "create" if on else "delete")
    reactor = _actor(ctx, request.reactor_id)
    await _check_ends(ctx, reactor, PEOPLE_AND_AGENTS, request.target_id, REACTABLE, "the target")
    org, target, kind = ctx.auth.org_id, request.target_id, request.kind
    if on:
        metadata = {"interactionType": "reaction", "reaction": kind}
        link = _link(ctx, reactor, target, ConnectionType.PARTICIPATED_IN, metadata)
        row = await repo.insert_live_link(ctx.session, link)
    else:
        row = await repo.end_live_link(ctx.session, org, reactor, target, ConnectionType.PARTICIPATED_IN.value, kind)
    if row is None:
        properties = (await repo.properties_of(ctx.session, org, [target]))[target]
        return _reacted(None, False, properties)
    await ctx.emit(EventType.CONTENT_EVENT, target_id=target, metadata={
        "action": "liked" if on else "unliked", "interactionType": "liked", "reaction": kind,
        "reactorId": str(reactor), "connectionId": str(row.id)})
    delta = 1 if on else -1  # the hot row last: its lock is held from here to the commit
    properties = (await repo.bump(ctx.session, org, [Bump(target, REACTIONS, delta),
                                                     Bump(target, REACTION_COUNTS, delta, sub=kind)]))[target]
    return _reacted(to_connection(row), True, properties)


def _reacted(connection: Any, changed: bool, properties: dict[str, Any]) -> Reacted:
    counts = properties.get(REACTION_COUNTS)
    per_kind = {k: _count(counts, k) for k in counts} if isinstance(counts, dict) else {}
    return Reacted(connection=connection, changed=changed, total_reactions=_count(properties, REACTIONS),
                   reaction_counts={k: v for k, v in per_kind.items() if v})


def comment_thing(request: CommentCreate) -> ThingCreate:
    """The `message` thing a comment is (created like any thing: checked, counted against the quota)."""
    name = " ".join(request.content.split())[:80] or "comment"
    return ThingCreate(type=ThingType.MESSAGE.value, name=name, status=ThingStatus.PUBLISHED,
                       properties={"content": request.content, "messageType": "comment",
                                   "inReplyTo": str(request.target_id)})


async def check_comment(ctx: WorkContext, request: CommentCreate) -> UUID:
    """Before the message is inserted: who writes, and that the target can be commented on."""
    require(ctx.auth, "social", "create")
    author = _actor(ctx, request.author_id)
    await _check_ends(ctx, author, PEOPLE_AND_AGENTS, request.target_id, REACTABLE, "the target")
    return author


async def comment(tx: WorkContext, request: CommentCreate, author: UUID, message: Thing) -> Commented:
    """In the transaction that inserted the message: link it, count it, log it."""
    org, target = tx.auth.org_id, request.target_id
    if not await repo.live_types(tx.session, org, [target]):  # deleted since `check_comment` looked
        raise ThingNotFound(f"no thing {target} in this organization", {"id": str(target)})
    refers = await graph_repo.insert_connection(tx.session, _link(tx, message.id, target, ConnectionType.REFERENCES,
                                                            {"interactionType": "comment"}))
    await graph_repo.insert_connection(tx.session, _link(tx, author, message.id, ConnectionType.AUTHORED, {}))
    await tx.emit(EventType.COMMUNICATION_EVENT, target_id=target, metadata={
        "protocol": "native", "messageType": "comment", "commentId": str(message.id), "authorId": str(author)})
    properties = (await repo.bump(tx.session, org, [Bump(target, COMMENTS, 1)]))[target]
    return Commented(comment=message, connection=to_connection(refers), total_comments=_count(properties, COMMENTS))
