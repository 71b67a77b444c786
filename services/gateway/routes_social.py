"""Social REST routes: follow a person or agent, react to and comment on messages and content.

Each route is one bus request on `shared.contracts.graph.social`'s models (the thing acted on comes from the
path); the org is the verified key's, and another org's thing is not found. Unfollowing or unreacting what was
not there answers 200 with `changed: false`, as following twice does.
"""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from services.gateway.auth import Caller
from services.gateway.routes_graph import WRITE, Bus, _set
from services.gateway.shapes import derived
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
    ReactionKind,
    ReactionRequest,
)

FollowBody = derived(FollowRequest, "FollowBody", drop=("followee_id",))
ReactionBody = derived(ReactionRequest, "ReactionBody", drop=("target_id",))
CommentBody = derived(CommentCreate, "CommentBody", drop=("target_id",))

router = APIRouter(prefix="/v1/things/{id}", tags=["social"])


@router.post("/follow", responses=WRITE)
async def follow(id: UUID, caller: Caller, bus: Bus, body: FollowBody | None = None) -> Followed:  # type: ignore[valid-type]
    return await bus.request(FOLLOW, {"followee_id": id, **(_set(body) if body is not None else {})}, caller)


@router.delete("/follow", responses=WRITE)
async def unfollow(id: UUID, caller: Caller, bus: Bus, follower_id: Annotated[UUID | None, Query()] = None) -> Followed:
    return await bus.request(UNFOLLOW, {"followee_id": id, "follower_id": follower_id}, caller)


@router.post("/reactions", responses=WRITE)
async def react(id: UUID, caller: Caller, bus: Bus, body: ReactionBody | None = None) -> Reacted:  # type: ignore[valid-type]
    return await bus.request(REACT, {"target_id": id, **(_set(body) if body is not None else {})}, caller)


@router.delete("/reactions/{kind}", responses=WRITE)
async def unreact(id: UUID, kind: ReactionKind, caller: Caller, bus: Bus,
                  reactor_id: Annotated[UUID | None, Query()] = None) -> Reacted:
    return await bus.request(UNREACT, {"target_id": id, "kind": kind, "reactor_id": reactor_id}, caller)


@router.post("/comments", status_code=201, responses=WRITE)
async def comment(id: UUID, body: CommentBody, caller: Caller, bus: Bus) -> Commented:  # type: ignore[valid-type]
    return await bus.request(COMMENT, {"target_id": id, **_set(body)}, caller)


