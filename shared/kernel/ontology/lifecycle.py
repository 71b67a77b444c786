"""A thing's lifecycle: its statuses and the changes between them the services allow."""

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType


class ThingStatus(StrEnum):
    """Lifecycle status of a thing.

    The plugin extension deactivates plugins to "suspended", which is not a thing status;
    in this ontology that state is ``INACTIVE``.
    """

    DRAFT = "draft"
    ACTIVE = "active"
    PUBLISHED = "published"
    INACTIVE = "inactive"
    ARCHIVED = "archived"


STATUS_TRANSITIONS: Mapping[ThingStatus, frozenset[ThingStatus]] = MappingProxyType({
    ThingStatus.DRAFT: frozenset({ThingStatus.ACTIVE, ThingStatus.PUBLISHED, ThingStatus.ARCHIVED}),
    ThingStatus.ACTIVE: frozenset({ThingStatus.PUBLISHED, ThingStatus.INACTIVE, ThingStatus.ARCHIVED}),
    ThingStatus.PUBLISHED: frozenset({ThingStatus.DRAFT, ThingStatus.INACTIVE, ThingStatus.ARCHIVED}),
    ThingStatus.INACTIVE: frozenset({ThingStatus.ACTIVE, ThingStatus.ARCHIVED}),
    ThingStatus.ARCHIVED: frozenset({ThingStatus.INACTIVE}),
})
"""Allowed status changes. The spec lists the statuses but no transitions, so this is our rule:
content moves draft -> published (and back to draft to unpublish), everything else toggles
active <-> inactive, anything can be archived, and an archived thing is only restored to inactive
so that reactivating it is a separate, deliberate step."""


def can_transition(current: ThingStatus, new: ThingStatus) -> bool:
    """Whether a thing may move from ``current`` to ``new``; keeping the same status is always allowed."""
    return current == new or new in STATUS_TRANSITIONS[current]
