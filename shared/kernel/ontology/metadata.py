"""What the metadata of a consolidated connection or event carries: the keys of its variant and its protocol.

Consolidated types fold many of the specification's granular names into one; the folded variant
and, for protocol types, ``metadata.protocol`` are what tell them apart again.
"""

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from shared.kernel.ontology.types import ConnectionType, EventType


class MetadataProtocol(StrEnum):
    """Values of ``metadata.protocol`` on events and connections (the envelope's own tag is `shared.kernel.envelope.Protocol`).

    ``traditional`` is what the spec reports for payments that carry no protocol (e.g. Stripe); ``webhook``
    marks what a third party's signed inbound webhook brought in (tenancy's webhook sources).
    """

    A2A = "a2a"
    ACP = "acp"
    AP2 = "ap2"
    X402 = "x402"
    AG_UI = "ag-ui"
    NATIVE = "native"
    TRADITIONAL = "traditional"
    WEBHOOK = "webhook"

CONNECTION_VARIANTS: Mapping[ConnectionType, Mapping[str, tuple[str, ...]]] = MappingProxyType({
    ConnectionType.TRANSACTED: {"transactionType": ("payment", "subscription", "invoice")},
    ConnectionType.NOTIFIED: {"channel": ("email", "sms", "push", "in_app"), "notificationType": ()},
    ConnectionType.REFERRED: {"referralType": ("direct", "conversion", "campaign")},
    ConnectionType.COMMUNICATED: {"messageType": ()},
    ConnectionType.DELEGATED: {"taskType": ()},
    ConnectionType.APPROVED: {"approvalType": ("transaction",)},
    ConnectionType.FULFILLED: {"fulfillmentType": ("intent_to_cart",)},
})
"""For each consolidated connection type, the metadata keys that carry its variant and the values
the spec names for them (an empty tuple means the spec names none; listed values are examples,
not a closed set). ``protocol`` is not listed here: see ``PROTOCOL_CONNECTION_TYPES``."""

EVENT_VARIANTS: Mapping[EventType, Mapping[str, tuple[str, ...]]] = MappingProxyType({
    EventType.CONTENT_EVENT: {"action": ("created", "updated", "deleted", "viewed", "shared", "liked")},
    EventType.PAYMENT_EVENT: {"status": ("requested", "verified", "processed")},
    EventType.SUBSCRIPTION_EVENT: {"action": ("started", "renewed", "cancelled")},
    EventType.COMMERCE_EVENT: {"eventType": ("purchase_initiated",)},
    # The type list names status started|ended; the livestream example adds "scheduled".
    EventType.LIVESTREAM_EVENT: {
        "status": ("scheduled", "started", "ended"),
        "action": ("joined", "left", "chat", "donation"),
    },
    EventType.NOTIFICATION_EVENT: {"channel": ("email", "sms", "push", "in_app"), "deliveryStatus": ("delivered",)},
    EventType.REFERRAL_EVENT: {"action": ("created", "completed", "rewarded")},
    EventType.COMMUNICATION_EVENT: {"messageType": ("task_delegation", "ui", "clone_interaction")},
    EventType.TASK_EVENT: {"action": ("delegated", "completed", "failed")},
    # The spec gives mandate_event only mandateType; "action" is ours, so mandate_created keeps its verb.
    EventType.MANDATE_EVENT: {"mandateType": ("intent", "cart"), "action": ("created",)},
    EventType.PRICE_EVENT: {"action": ("checked", "changed")},
})
"""For each consolidated event type, the metadata keys that carry its variant and the values the
spec names for them (listed values are examples, not a closed set). ``protocol`` is not listed
here: see ``PROTOCOL_EVENT_TYPES``."""

PROTOCOL_CONNECTION_TYPES: frozenset[ConnectionType] = frozenset({
    ConnectionType.TRANSACTED, ConnectionType.COMMUNICATED, ConnectionType.DELEGATED,
    ConnectionType.APPROVED, ConnectionType.FULFILLED,
})
"""Connection types the spec describes as "+ protocol": they must carry ``metadata.protocol``
(``native`` for our own bus, ``traditional`` for payments outside any agent protocol)."""

PROTOCOL_EVENT_TYPES: frozenset[EventType] = frozenset({
    EventType.PAYMENT_EVENT, EventType.COMMERCE_EVENT, EventType.COMMUNICATION_EVENT,
    EventType.TASK_EVENT, EventType.MANDATE_EVENT,
})
"""The spec's "protocol-specific events", whose metadata always includes ``protocol``
(``native`` for our own bus, ``traditional`` for payments outside any agent protocol)."""
