"""Social messages of the graph: follows, reactions and comments, with the counts they keep on their things.

How the ontology maps them (seeds 002/003):
- a follow is a `following` connection from the follower to the followee (people and agents), ended
  (`valid_to`) by an unfollow; the followee's `properties.totalFollowers` and the follower's
  `properties.totalFollowing` count the live ones;
- a reaction is a `participated_in` connection from the reactor to a message or a piece of content with
  `metadata.interactionType = "reaction"` and `metadata.reaction` its kind (`like`, `👍`, ...), plus a
  `content_event` (`action: liked` / `unliked`); the target's `properties.totalReactions` and
  `properties.reactionCounts.<kind>` count them;
- a comment is a `message` thing (`properties.content`) that `references` what it comments on, `authored`
  by its author, plus a `communication_event` (`messageType: comment`); the target's
  `properties.totalComments` counts them.
Every count moves in the transaction of its connection, by one atomic UPDATE, and only when the connection
really changed: following twice is a no-op, not +2.
"""

from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, Field, StringConstraints

from shared.contracts.graph import Connection, Thing
from shared.kernel import subjects
from shared.kernel.envelope import Payload, register_message

ReactionKind = Annotated[str, StringConstraints(pattern=r"^[^\s]{1,32}$")]
"""`like`, `love`, `👍`: one word or symbol, no spaces."""


class FollowRequest(Payload):
    followee_id: UUID = Field(description="The person or agent followed.")
    follower_id: UUID | None = Field(None, description="Unset = the caller; another needs `social:act_as`.")


class Followed(BaseModel):
    """A follow or unfollow: the connection (None when unfollowing what was not followed), whether it changed
    anything, and the counts after it."""

    connection: Connection | None
    changed: bool
    total_followers: int = Field(description="The followee's `totalFollowers`.")
    total_following: int = Field(description="The follower's `totalFollowing`.")


class ReactionRequest(Payload):
    target_id: UUID = Field(description="The message or content reacted to.")
    kind: ReactionKind = "like"
    reactor_id: UUID | None = Field(None, description="Unset = the caller; another needs `social:act_as`.")


class Reacted(BaseModel):
    connection: Connection | None
    changed: bool
    total_reactions: int
    reaction_counts: dict[str, int]


class CommentCreate(Payload):
    target_id: UUID = Field(description="The message or content commented on.")
    content: Annotated[str, StringConstraints(min_length=1, max_length=10_000, strip_whitespace=True)]
    author_id: UUID | None = Field(None, description="Unset = the caller; another needs `social:act_as`.")


class Commented(BaseModel):
    comment: Thing = Field(description="The `message` thing holding the comment.")
    connection: Connection = Field(description="comment `references` target.")
    total_comments: int


def _message(type_: str, verb: str, payload: type[Payload], result: type[BaseModel], permission: str) -> Any:
    return register_message(type_, subjects.command("graph", verb), payload, result, permission=permission)


FOLLOW = _message("graph.social.follow", "social.follow", FollowRequest, Followed, "social:create")
UNFOLLOW = _message("graph.social.unfollow", "social.unfollow", FollowRequest, Followed, "social:delete")
REACT = _message("graph.social.react", "social.react", ReactionRequest, Reacted, "social:create")
UNREACT = _message("graph.social.unreact", "social.unreact", ReactionRequest, Reacted, "social:delete")
COMMENT = _message("graph.social.comment", "social.comment", CommentCreate, Commented, "social:create")
