"""The graph's social subscribers: follow, unfollow, react, unreact (in the router's transaction) and comment.

A comment adds a `message` thing, so it goes the way every create goes (app.py's `_create`: a quota unit
reserved before the transaction, settled after it), with the link, the count and the event in the insert's
own transaction.
"""

from services.graph import service_social
from shared.contracts.graph import Thing
from shared.contracts.graph.social import (
    COMMENT,
    FOLLOW,
    REACT,
    UNFOLLOW,
    UNREACT,
    CommentCreate,
    Commented,
    Followed,
    FollowRequest,
    Reacted,
    ReactionRequest,
)
from shared.runtime.context import WorkContext
from shared.runtime.handlers import ServiceRouter

router = ServiceRouter("graph")


@router.handler(FOLLOW)
async def follow(ctx: WorkContext, payload: FollowRequest) -> Followed:
    return await service_social.follow(ctx, payload, on=True)


@router.handler(UNFOLLOW)
async def unfollow(ctx: WorkContext, payload: FollowRequest) -> Followed:
    return await service_social.follow(ctx, payload, on=False)


@router.handler(REACT)
async def react(ctx: WorkContext, payload: ReactionRequest) -> Reacted:
    return await service_social.react(ctx, payload, on=True)


@router.handler(UNREACT)
async def unreact(ctx: WorkContext, payload: ReactionRequest) -> Reacted:
    return await service_social.react(ctx, payload, on=False)


@router.handler(COMMENT, transactional=False)
async def comment(ctx: WorkContext, payload: CommentCreate) -> Commented:
    from services.graph.app import _create  # app.py includes this router: imported when first used

    async with ctx.transaction() as tx:
        author = await service_social.check_comment(tx, payload)
    done: list[Commented] = []

    async def link_and_count(tx: WorkContext, things: list[Thing]) -> None:
        done.append(await service_social.comment(tx, payload, author, things[0]))

    await _create(ctx, [service_social.comment_thing(payload)], then=link_and_count)
    return done[0]
