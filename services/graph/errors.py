"""The graph's errors: refinements of the shared families, so callers can catch either."""

from shared.kernel.errors import Conflict, InvalidRequest, NotFound


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

