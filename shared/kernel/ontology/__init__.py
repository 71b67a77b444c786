"""The ONE six-dimension ontology vocabulary: every type name the services may store or publish.

Services validate against these enums and translate the spec's granular names (``task_delegated``,
``communicates_with``, ...) into the consolidated type plus the metadata that carries the variant,
so the bus and the database only ever see consolidated names.

Source: the ONE ontology specification v2.0.0 (things, connections, events, knowledge) and the
ElizaOS plugin extension (8 thing, 6 connection and 9 event types, grouped under ``"plugin"``).
Where the specification's stated totals disagree with its own lists, the lists win; see
``categories`` and ``tests/unit/test_ontology.py``.

The package is split by meaning (``types``, ``lifecycle``, ``accounts``, ``categories``,
``metadata``, ``granular``); importers use the names re-exported here.
"""

from shared.kernel.ontology.accounts import OrgPlan, OrgStatus, Role
from shared.kernel.ontology.categories import (
    CONNECTION_CATEGORIES,
    CONSOLIDATED_CONNECTION_TYPES,
    CONSOLIDATED_EVENT_TYPES,
    EVENT_CATEGORIES,
    SELF_LINK_ALLOWED,
    THING_CATEGORIES,
)
from shared.kernel.ontology.granular import (
    GRANULAR_CONNECTIONS,
    GRANULAR_EVENTS,
    GRANULAR_THINGS,
    Canonical,
    UnknownOntologyType,
    canonical_connection,
    canonical_event,
    canonical_thing,
    is_thing_type,
    thing_type,
)
from shared.kernel.ontology.lifecycle import STATUS_TRANSITIONS, ThingStatus, can_transition
from shared.kernel.ontology.metadata import (
    CONNECTION_VARIANTS,
    EVENT_VARIANTS,
    PROTOCOL_CONNECTION_TYPES,
    PROTOCOL_EVENT_TYPES,
    MetadataProtocol,
)
from shared.kernel.ontology.types import (
    ConnectionType,
    EntityType,
    EventType,
    KnowledgeRole,
    KnowledgeType,
    ThingType,
)

__all__ = [
    "CONNECTION_CATEGORIES",
    "CONNECTION_VARIANTS",
    "CONSOLIDATED_CONNECTION_TYPES",
    "CONSOLIDATED_EVENT_TYPES",
    "EVENT_CATEGORIES",
    "EVENT_VARIANTS",
    "GRANULAR_CONNECTIONS",
    "GRANULAR_EVENTS",
    "GRANULAR_THINGS",
    "PROTOCOL_CONNECTION_TYPES",
    "PROTOCOL_EVENT_TYPES",
    "SELF_LINK_ALLOWED",
    "STATUS_TRANSITIONS",
    "THING_CATEGORIES",
    "Canonical",
    "ConnectionType",
    "EntityType",
    "EventType",
    "KnowledgeRole",
    "KnowledgeType",
    "MetadataProtocol",
    "OrgPlan",
    "OrgStatus",
    "Role",
    "ThingStatus",
    "ThingType",
    "UnknownOntologyType",
    "can_transition",
    "canonical_connection",
    "canonical_event",
    "canonical_thing",
    "is_thing_type",
    "thing_type",
]
