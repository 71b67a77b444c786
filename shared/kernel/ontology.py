"""The ONE six-dimension ontology vocabulary: every type name the services may store or publish.

Services validate against these enums and translate the spec's granular names (``task_delegated``,
``communicates_with``, ...) into the consolidated type plus the metadata that carries the variant,
so the bus and the database only ever see consolidated names.

Source: the ONE ontology specification v2.0.0 (things, connections, events, knowledge) and the
ElizaOS plugin extension (8 thing, 6 connection and 9 event types, grouped under ``"plugin"``).
Where the specification's stated totals disagree with its own lists, the lists win; see the
category tables below and ``tests/unit/test_ontology.py``.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Generic, TypeVar


class UnknownOntologyType(ValueError):
    """Raised when a name is neither a consolidated type nor a known granular alias of one."""

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"unknown {kind} type: {name!r}")
        self.kind = kind
        self.name = name


class ThingType(StrEnum):
    """Everything you can point at and say "this is a ___"."""

    # core
    CREATOR = "creator"
    AI_CLONE = "ai_clone"
    AUDIENCE_MEMBER = "audience_member"
    ORGANIZATION = "organization"
    # business agents
    STRATEGY_AGENT = "strategy_agent"
    RESEARCH_AGENT = "research_agent"
    MARKETING_AGENT = "marketing_agent"
    SALES_AGENT = "sales_agent"
    SERVICE_AGENT = "service_agent"
    DESIGN_AGENT = "design_agent"
    ENGINEERING_AGENT = "engineering_agent"
    FINANCE_AGENT = "finance_agent"
    LEGAL_AGENT = "legal_agent"
    INTELLIGENCE_AGENT = "intelligence_agent"
    # content
    BLOG_POST = "blog_post"
    VIDEO = "video"
    PODCAST = "podcast"
    SOCIAL_POST = "social_post"
    EMAIL = "email"
    COURSE = "course"
    LESSON = "lesson"
    # products
    DIGITAL_PRODUCT = "digital_product"
    MEMBERSHIP = "membership"
    CONSULTATION = "consultation"
    NFT = "nft"
    # community
    COMMUNITY = "community"
    CONVERSATION = "conversation"
    MESSAGE = "message"
    # token
    TOKEN = "token"
    TOKEN_CONTRACT = "token_contract"
    # knowledge (``embedding`` is deprecated for operational vectors: use the knowledge table)
    KNOWLEDGE_ITEM = "knowledge_item"
    EMBEDDING = "embedding"
    # platform
    WEBSITE = "website"
    LANDING_PAGE = "landing_page"
    TEMPLATE = "template"
    LIVESTREAM = "livestream"
    RECORDING = "recording"
    MEDIA_ASSET = "media_asset"
    # business
    PAYMENT = "payment"
    SUBSCRIPTION = "subscription"
    INVOICE = "invoice"
    METRIC = "metric"
    INSIGHT = "insight"
    PREDICTION = "prediction"
    REPORT = "report"
    # authentication & session
    SESSION = "session"
    OAUTH_ACCOUNT = "oauth_account"
    VERIFICATION_TOKEN = "verification_token"
    PASSWORD_RESET_TOKEN = "password_reset_token"
    UI_PREFERENCES = "ui_preferences"
    # marketing
    NOTIFICATION = "notification"
    EMAIL_CAMPAIGN = "email_campaign"
    ANNOUNCEMENT = "announcement"
    REFERRAL = "referral"
    CAMPAIGN = "campaign"
    LEAD = "lead"
    # external integrations
    EXTERNAL_AGENT = "external_agent"
    EXTERNAL_WORKFLOW = "external_workflow"
    EXTERNAL_CONNECTION = "external_connection"
    # protocol entities (protocol named in properties.protocol)
    MANDATE = "mandate"
    PRODUCT = "product"
    # plugin extension (ElizaOS plugin integration)
    ELIZAOS_PLUGIN = "elizaos_plugin"
    PLUGIN_INSTANCE = "plugin_instance"
    PLUGIN_ACTION = "plugin_action"
    PLUGIN_PROVIDER = "plugin_provider"
    PLUGIN_EVALUATOR = "plugin_evaluator"
    PLUGIN_CLIENT = "plugin_client"
    PLUGIN_ADAPTER = "plugin_adapter"
    PLUGIN_SERVICE = "plugin_service"


EntityType = ThingType
"""The spec allows ``EntityType`` as the implementation alias of ``ThingType``."""


class ConnectionType(StrEnum):
    """How two things relate (state, not action)."""

    # ownership
    OWNS = "owns"
    CREATED_BY = "created_by"
    # AI relationships
    CLONE_OF = "clone_of"
    TRAINED_ON = "trained_on"
    POWERS = "powers"
    # content relationships
    AUTHORED = "authored"
    GENERATED_BY = "generated_by"
    PUBLISHED_TO = "published_to"
    PART_OF = "part_of"
    REFERENCES = "references"
    # community relationships
    MEMBER_OF = "member_of"
    FOLLOWING = "following"
    MODERATES = "moderates"
    PARTICIPATED_IN = "participated_in"
    # business relationships
    MANAGES = "manages"
    REPORTS_TO = "reports_to"
    COLLABORATES_WITH = "collaborates_with"
    # token relationships
    HOLDS_TOKENS = "holds_tokens"
    STAKED_IN = "staked_in"
    EARNED_FROM = "earned_from"
    # product relationships
    PURCHASED = "purchased"
    ENROLLED_IN = "enrolled_in"
    COMPLETED = "completed"
    TEACHING = "teaching"
    # consolidated (variant and protocol live in metadata)
    TRANSACTED = "transacted"
    NOTIFIED = "notified"
    REFERRED = "referred"
    COMMUNICATED = "communicated"
    DELEGATED = "delegated"
    APPROVED = "approved"
    FULFILLED = "fulfilled"
    # plugin extension (ElizaOS plugin integration)
    PLUGIN_DEPENDS_ON = "plugin_depends_on"
    PLUGIN_POWERS = "plugin_powers"
    PLUGIN_PROVIDES = "plugin_provides"
    PLUGIN_INSTALLED_IN = "plugin_installed_in"
    PLUGIN_CREATED_BY = "plugin_created_by"
    PLUGIN_USES = "plugin_uses"


class EventType(StrEnum):
    """Something that happened at a specific time."""

    # entity lifecycle
    ENTITY_CREATED = "entity_created"
    ENTITY_UPDATED = "entity_updated"
    ENTITY_DELETED = "entity_deleted"
    ENTITY_ARCHIVED = "entity_archived"
    # user
    USER_REGISTERED = "user_registered"
    USER_VERIFIED = "user_verified"
    USER_LOGIN = "user_login"
    USER_LOGOUT = "user_logout"
    PROFILE_UPDATED = "profile_updated"
    # authentication
    PASSWORD_RESET_REQUESTED = "password_reset_requested"
    PASSWORD_RESET_COMPLETED = "password_reset_completed"
    EMAIL_VERIFICATION_SENT = "email_verification_sent"
    EMAIL_VERIFIED = "email_verified"
    TWO_FACTOR_ENABLED = "two_factor_enabled"
    TWO_FACTOR_DISABLED = "two_factor_disabled"
    # organization
    ORGANIZATION_CREATED = "organization_created"
    ORGANIZATION_UPDATED = "organization_updated"
    USER_INVITED_TO_ORG = "user_invited_to_org"
    USER_JOINED_ORG = "user_joined_org"
    USER_REMOVED_FROM_ORG = "user_removed_from_org"
    # dashboard & UI
    DASHBOARD_VIEWED = "dashboard_viewed"
    SETTINGS_UPDATED = "settings_updated"
    THEME_CHANGED = "theme_changed"
    PREFERENCES_UPDATED = "preferences_updated"
    # AI clone
    CLONE_CREATED = "clone_created"
    CLONE_UPDATED = "clone_updated"
    VOICE_CLONED = "voice_cloned"
    APPEARANCE_CLONED = "appearance_cloned"
    # agent
    AGENT_CREATED = "agent_created"
    AGENT_EXECUTED = "agent_executed"
    AGENT_COMPLETED = "agent_completed"
    AGENT_FAILED = "agent_failed"
    # token
    TOKEN_CREATED = "token_created"
    TOKEN_MINTED = "token_minted"
    TOKEN_BURNED = "token_burned"
    TOKENS_PURCHASED = "tokens_purchased"
    TOKENS_STAKED = "tokens_staked"
    TOKENS_UNSTAKED = "tokens_unstaked"
    TOKENS_TRANSFERRED = "tokens_transferred"
    # course
    COURSE_CREATED = "course_created"
    COURSE_ENROLLED = "course_enrolled"
    LESSON_COMPLETED = "lesson_completed"
    COURSE_COMPLETED = "course_completed"
    CERTIFICATE_EARNED = "certificate_earned"
    # analytics
    METRIC_CALCULATED = "metric_calculated"
    INSIGHT_GENERATED = "insight_generated"
    PREDICTION_MADE = "prediction_made"
    OPTIMIZATION_APPLIED = "optimization_applied"
    REPORT_GENERATED = "report_generated"
    # inference
    INFERENCE_REQUEST = "inference_request"
    INFERENCE_COMPLETED = "inference_completed"
    INFERENCE_FAILED = "inference_failed"
    INFERENCE_QUOTA_EXCEEDED = "inference_quota_exceeded"
    INFERENCE_REVENUE_COLLECTED = "inference_revenue_collected"
    ORG_REVENUE_GENERATED = "org_revenue_generated"
    REVENUE_SHARE_DISTRIBUTED = "revenue_share_distributed"
    # blockchain
    NFT_MINTED = "nft_minted"
    NFT_TRANSFERRED = "nft_transferred"
    TOKENS_BRIDGED = "tokens_bridged"
    CONTRACT_DEPLOYED = "contract_deployed"
    TREASURY_WITHDRAWAL = "treasury_withdrawal"
    # consolidated (variant and protocol live in metadata)
    CONTENT_EVENT = "content_event"
    PAYMENT_EVENT = "payment_event"
    SUBSCRIPTION_EVENT = "subscription_event"
    COMMERCE_EVENT = "commerce_event"
    LIVESTREAM_EVENT = "livestream_event"
    NOTIFICATION_EVENT = "notification_event"
    REFERRAL_EVENT = "referral_event"
    COMMUNICATION_EVENT = "communication_event"
    TASK_EVENT = "task_event"
    MANDATE_EVENT = "mandate_event"
    PRICE_EVENT = "price_event"
    # plugin extension (ElizaOS plugin integration)
    PLUGIN_DISCOVERED = "plugin_discovered"
    PLUGIN_INSTALLED = "plugin_installed"
    PLUGIN_ACTIVATED = "plugin_activated"
    PLUGIN_DEACTIVATED = "plugin_deactivated"
    PLUGIN_UNINSTALLED = "plugin_uninstalled"
    PLUGIN_ACTION_EXECUTED = "plugin_action_executed"
    PLUGIN_ERROR_OCCURRED = "plugin_error_occurred"
    PLUGIN_UPDATED = "plugin_updated"
    PLUGIN_CONFIGURED = "plugin_configured"


class KnowledgeType(StrEnum):
    """Kinds of knowledge item; ``label`` replaces the legacy tag."""

    LABEL = "label"
    DOCUMENT = "document"
    CHUNK = "chunk"
    VECTOR_ONLY = "vector_only"


class KnowledgeRole(StrEnum):
    """Role of a thingKnowledge link between a thing and a knowledge item."""

    LABEL = "label"
    SUMMARY = "summary"
    CHUNK_OF = "chunk_of"
    CAPTION = "caption"
    KEYWORD = "keyword"


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


class MetadataProtocol(StrEnum):
    """Values of ``metadata.protocol`` on events and connections (the envelope's own tag is `shared.kernel.envelope.Protocol`).

    ``traditional`` is what the spec reports for payments that carry no protocol (e.g. Stripe).
    """

    A2A = "a2a"
    ACP = "acp"
    AP2 = "ap2"
    X402 = "x402"
    AG_UI = "ag-ui"
    NATIVE = "native"
    TRADITIONAL = "traditional"


class OrgStatus(StrEnum):
    """Organization account status."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    TRIAL = "trial"
    CANCELLED = "cancelled"


class OrgPlan(StrEnum):
    """Organization subscription plan."""

    STARTER = "starter"
    PRO = "pro"
    ENTERPRISE = "enterprise"


class Role(StrEnum):
    """A person's access level."""

    PLATFORM_OWNER = "platform_owner"
    ORG_OWNER = "org_owner"
    ORG_USER = "org_user"
    CUSTOMER = "customer"


THING_CATEGORIES: Mapping[str, frozenset[ThingType]] = MappingProxyType({
    "core": frozenset({ThingType.CREATOR, ThingType.AI_CLONE, ThingType.AUDIENCE_MEMBER, ThingType.ORGANIZATION}),
    "business_agents": frozenset({
        ThingType.STRATEGY_AGENT, ThingType.RESEARCH_AGENT, ThingType.MARKETING_AGENT, ThingType.SALES_AGENT,
        ThingType.SERVICE_AGENT, ThingType.DESIGN_AGENT, ThingType.ENGINEERING_AGENT, ThingType.FINANCE_AGENT,
        ThingType.LEGAL_AGENT, ThingType.INTELLIGENCE_AGENT,
    }),
    "content": frozenset({
        ThingType.BLOG_POST, ThingType.VIDEO, ThingType.PODCAST, ThingType.SOCIAL_POST, ThingType.EMAIL,
        ThingType.COURSE, ThingType.LESSON,
    }),
    "products": frozenset({ThingType.DIGITAL_PRODUCT, ThingType.MEMBERSHIP, ThingType.CONSULTATION, ThingType.NFT}),
    "community": frozenset({ThingType.COMMUNITY, ThingType.CONVERSATION, ThingType.MESSAGE}),
    "token": frozenset({ThingType.TOKEN, ThingType.TOKEN_CONTRACT}),
    "knowledge": frozenset({ThingType.KNOWLEDGE_ITEM, ThingType.EMBEDDING}),
    "platform": frozenset({
        ThingType.WEBSITE, ThingType.LANDING_PAGE, ThingType.TEMPLATE, ThingType.LIVESTREAM, ThingType.RECORDING,
        ThingType.MEDIA_ASSET,
    }),
    "business": frozenset({
        ThingType.PAYMENT, ThingType.SUBSCRIPTION, ThingType.INVOICE, ThingType.METRIC, ThingType.INSIGHT,
        ThingType.PREDICTION, ThingType.REPORT,
    }),
    # The spec's summary counts ui_preferences here (5); its type list gives it a header of its own.
    "authentication": frozenset({
        ThingType.SESSION, ThingType.OAUTH_ACCOUNT, ThingType.VERIFICATION_TOKEN, ThingType.PASSWORD_RESET_TOKEN,
        ThingType.UI_PREFERENCES,
    }),
    "marketing": frozenset({
        ThingType.NOTIFICATION, ThingType.EMAIL_CAMPAIGN, ThingType.ANNOUNCEMENT, ThingType.REFERRAL,
        ThingType.CAMPAIGN, ThingType.LEAD,
    }),
    "external": frozenset({ThingType.EXTERNAL_AGENT, ThingType.EXTERNAL_WORKFLOW, ThingType.EXTERNAL_CONNECTION}),
    "protocol": frozenset({ThingType.MANDATE, ThingType.PRODUCT}),
    "plugin": frozenset({
        ThingType.ELIZAOS_PLUGIN, ThingType.PLUGIN_INSTANCE, ThingType.PLUGIN_ACTION, ThingType.PLUGIN_PROVIDER,
        ThingType.PLUGIN_EVALUATOR, ThingType.PLUGIN_CLIENT, ThingType.PLUGIN_ADAPTER, ThingType.PLUGIN_SERVICE,
    }),
})
"""Thing types grouped as the spec's summary groups them; the groups partition ``ThingType``."""

CONNECTION_CATEGORIES: Mapping[str, frozenset[ConnectionType]] = MappingProxyType({
    "ownership": frozenset({ConnectionType.OWNS, ConnectionType.CREATED_BY}),
    "ai": frozenset({ConnectionType.CLONE_OF, ConnectionType.TRAINED_ON, ConnectionType.POWERS}),
    "content": frozenset({
        ConnectionType.AUTHORED, ConnectionType.GENERATED_BY, ConnectionType.PUBLISHED_TO, ConnectionType.PART_OF,
        ConnectionType.REFERENCES,
    }),
    "community": frozenset({
        ConnectionType.MEMBER_OF, ConnectionType.FOLLOWING, ConnectionType.MODERATES, ConnectionType.PARTICIPATED_IN,
    }),
    "business": frozenset({ConnectionType.MANAGES, ConnectionType.REPORTS_TO, ConnectionType.COLLABORATES_WITH}),
    "token": frozenset({ConnectionType.HOLDS_TOKENS, ConnectionType.STAKED_IN, ConnectionType.EARNED_FROM}),
    "product": frozenset({
        ConnectionType.PURCHASED, ConnectionType.ENROLLED_IN, ConnectionType.COMPLETED, ConnectionType.TEACHING,
    }),
    "consolidated": frozenset({
        ConnectionType.TRANSACTED, ConnectionType.NOTIFIED, ConnectionType.REFERRED, ConnectionType.COMMUNICATED,
        ConnectionType.DELEGATED, ConnectionType.APPROVED, ConnectionType.FULFILLED,
    }),
    "plugin": frozenset({
        ConnectionType.PLUGIN_DEPENDS_ON, ConnectionType.PLUGIN_POWERS, ConnectionType.PLUGIN_PROVIDES,
        ConnectionType.PLUGIN_INSTALLED_IN, ConnectionType.PLUGIN_CREATED_BY, ConnectionType.PLUGIN_USES,
    }),
})
"""Connection types grouped as the spec's type list groups them; the groups partition ``ConnectionType``."""

EVENT_CATEGORIES: Mapping[str, frozenset[EventType]] = MappingProxyType({
    "entity_lifecycle": frozenset({
        EventType.ENTITY_CREATED, EventType.ENTITY_UPDATED, EventType.ENTITY_DELETED, EventType.ENTITY_ARCHIVED,
    }),
    "user": frozenset({
        EventType.USER_REGISTERED, EventType.USER_VERIFIED, EventType.USER_LOGIN, EventType.USER_LOGOUT,
        EventType.PROFILE_UPDATED,
    }),
    "authentication": frozenset({
        EventType.PASSWORD_RESET_REQUESTED, EventType.PASSWORD_RESET_COMPLETED, EventType.EMAIL_VERIFICATION_SENT,
        EventType.EMAIL_VERIFIED, EventType.TWO_FACTOR_ENABLED, EventType.TWO_FACTOR_DISABLED,
    }),
    "organization": frozenset({
        EventType.ORGANIZATION_CREATED, EventType.ORGANIZATION_UPDATED, EventType.USER_INVITED_TO_ORG,
        EventType.USER_JOINED_ORG, EventType.USER_REMOVED_FROM_ORG,
    }),
    "dashboard_ui": frozenset({
        EventType.DASHBOARD_VIEWED, EventType.SETTINGS_UPDATED, EventType.THEME_CHANGED,
        EventType.PREFERENCES_UPDATED,
    }),
    "ai_clone": frozenset({
        EventType.CLONE_CREATED, EventType.CLONE_UPDATED, EventType.VOICE_CLONED, EventType.APPEARANCE_CLONED,
    }),
    "agent": frozenset({
        EventType.AGENT_CREATED, EventType.AGENT_EXECUTED, EventType.AGENT_COMPLETED, EventType.AGENT_FAILED,
    }),
    "token": frozenset({
        EventType.TOKEN_CREATED, EventType.TOKEN_MINTED, EventType.TOKEN_BURNED, EventType.TOKENS_PURCHASED,
        EventType.TOKENS_STAKED, EventType.TOKENS_UNSTAKED, EventType.TOKENS_TRANSFERRED,
    }),
    "course": frozenset({
        EventType.COURSE_CREATED, EventType.COURSE_ENROLLED, EventType.LESSON_COMPLETED, EventType.COURSE_COMPLETED,
        EventType.CERTIFICATE_EARNED,
    }),
    "analytics": frozenset({
        EventType.METRIC_CALCULATED, EventType.INSIGHT_GENERATED, EventType.PREDICTION_MADE,
        EventType.OPTIMIZATION_APPLIED, EventType.REPORT_GENERATED,
    }),
    "inference": frozenset({
        EventType.INFERENCE_REQUEST, EventType.INFERENCE_COMPLETED, EventType.INFERENCE_FAILED,
        EventType.INFERENCE_QUOTA_EXCEEDED, EventType.INFERENCE_REVENUE_COLLECTED, EventType.ORG_REVENUE_GENERATED,
        EventType.REVENUE_SHARE_DISTRIBUTED,
    }),
    "blockchain": frozenset({
        EventType.NFT_MINTED, EventType.NFT_TRANSFERRED, EventType.TOKENS_BRIDGED, EventType.CONTRACT_DEPLOYED,
        EventType.TREASURY_WITHDRAWAL,
    }),
    "consolidated": frozenset({
        EventType.CONTENT_EVENT, EventType.PAYMENT_EVENT, EventType.SUBSCRIPTION_EVENT, EventType.COMMERCE_EVENT,
        EventType.LIVESTREAM_EVENT, EventType.NOTIFICATION_EVENT, EventType.REFERRAL_EVENT,
        EventType.COMMUNICATION_EVENT, EventType.TASK_EVENT, EventType.MANDATE_EVENT, EventType.PRICE_EVENT,
    }),
    "plugin": frozenset({
        EventType.PLUGIN_DISCOVERED, EventType.PLUGIN_INSTALLED, EventType.PLUGIN_ACTIVATED,
        EventType.PLUGIN_DEACTIVATED, EventType.PLUGIN_UNINSTALLED, EventType.PLUGIN_ACTION_EXECUTED,
        EventType.PLUGIN_ERROR_OCCURRED, EventType.PLUGIN_UPDATED, EventType.PLUGIN_CONFIGURED,
    }),
})
"""Event types grouped as the spec's type list groups them; the groups partition ``EventType``."""

CONSOLIDATED_CONNECTION_TYPES = CONNECTION_CATEGORIES["consolidated"]
CONSOLIDATED_EVENT_TYPES = EVENT_CATEGORIES["consolidated"]

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

SELF_LINK_ALLOWED: frozenset[ConnectionType] = frozenset()
"""Connection types that may link a thing to itself. The spec says a thing cannot connect to itself
("usually") and names no exception, so none is allowed until a real case appears."""


T = TypeVar("T", ThingType, ConnectionType, EventType)


@dataclass(frozen=True)
class Canonical(Generic[T]):
    """A name resolved to its consolidated type plus the metadata that carries the variant.

    For things the mapping is to ``properties`` rather than ``metadata``. ``inverse`` is set when
    the granular connection points the other way (``course taught_by clone`` is
    ``clone teaching course``): swap from and to when storing it.
    """

    type: T
    metadata: Mapping[str, Any] = field(default_factory=dict)
    inverse: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))


GRANULAR_THINGS: Mapping[str, Canonical[ThingType]] = MappingProxyType({
    "intent_mandate": Canonical(ThingType.MANDATE, {"mandateType": "intent"}),
    "cart_mandate": Canonical(ThingType.MANDATE, {"mandateType": "cart"}),
})
"""Separate thing types the spec folds into one (variant in ``properties``)."""

GRANULAR_CONNECTIONS: Mapping[str, Canonical[ConnectionType]] = MappingProxyType({
    "communicates_with": Canonical(ConnectionType.COMMUNICATED),
    "fulfills": Canonical(ConnectionType.FULFILLED),
    "follows": Canonical(ConnectionType.FOLLOWING),
    "taught_by": Canonical(ConnectionType.TEACHING, inverse=True),
})
"""Connection names the spec uses in its examples and overview that are not consolidated types.
None of them fixes a variant: the caller supplies messageType, fulfillmentType, ... itself."""

_DERIVED_EVENT_VARIANTS: tuple[tuple[str, EventType, str], ...] = (
    ("content", EventType.CONTENT_EVENT, "action"),
    ("payment", EventType.PAYMENT_EVENT, "status"),
    ("subscription", EventType.SUBSCRIPTION_EVENT, "action"),
    ("livestream", EventType.LIVESTREAM_EVENT, "status"),
    ("livestream", EventType.LIVESTREAM_EVENT, "action"),
    ("referral", EventType.REFERRAL_EVENT, "action"),
    ("task", EventType.TASK_EVENT, "action"),
    ("price", EventType.PRICE_EVENT, "action"),
)

GRANULAR_EVENTS: Mapping[str, Canonical[EventType]] = MappingProxyType({
    # "<prefix>_<value>" for each variant value the spec lists, e.g. task_delegated, payment_processed,
    # price_checked, content_viewed, content_liked.
    **{
        f"{prefix}_{value}": Canonical(event_type, {key: value})
        for prefix, event_type, key in _DERIVED_EVENT_VARIANTS
        for value in EVENT_VARIANTS[event_type][key]
    },
    # Names from the spec's patterns and feature walkthroughs whose variant the caller supplies:
    # content_changed (action created|updated|deleted), content_interacted (action viewed|shared|liked;
    # the example calls the key interactionType), subscription_updated (action), livestream_status_changed
    # (status), livestream_interaction (action; the example calls the key type), message_sent (messageType).
    "content_changed": Canonical(EventType.CONTENT_EVENT),
    "content_interacted": Canonical(EventType.CONTENT_EVENT),
    "subscription_updated": Canonical(EventType.SUBSCRIPTION_EVENT),
    "livestream_status_changed": Canonical(EventType.LIVESTREAM_EVENT),
    "livestream_interaction": Canonical(EventType.LIVESTREAM_EVENT),
    "message_sent": Canonical(EventType.COMMUNICATION_EVENT),
    "content_generated": Canonical(EventType.CONTENT_EVENT, {"action": "created"}),
    "notification_delivered": Canonical(EventType.NOTIFICATION_EVENT, {"deliveryStatus": "delivered"}),
    "clone_interaction": Canonical(EventType.COMMUNICATION_EVENT, {"messageType": "clone_interaction"}),
    "purchase_initiated": Canonical(EventType.COMMERCE_EVENT, {"eventType": "purchase_initiated"}),
    "mandate_created": Canonical(EventType.MANDATE_EVENT, {"action": "created"}),
    # The token-purchase walkthrough logs "revenue_generated (for creator)": the org revenue event.
    "revenue_generated": Canonical(EventType.ORG_REVENUE_GENERATED),
})
"""Event names the spec uses besides its consolidated types, mapped as the spec's consolidated type
comments describe. The ELEVATE walkthrough's journey_step_completed, achievement_unlocked and
tokens_earned have no counterpart in the spec and are deliberately left unknown."""


def _resolve(kind: str, enum_type: type[T], granular: Mapping[str, Canonical[T]], name: str) -> Canonical[T]:
    if name in granular:
        return granular[name]
    try:
        return Canonical(enum_type(name))
    except ValueError:
        raise UnknownOntologyType(kind, name) from None


def canonical_thing(name: str) -> Canonical[ThingType]:
    """Resolve a thing type or a folded one (``intent_mandate``) to its thing type and properties."""
    return _resolve("thing", ThingType, GRANULAR_THINGS, name)


def canonical_connection(name: str) -> Canonical[ConnectionType]:
    """Resolve a connection type or granular connection name to the type stored on the connection."""
    return _resolve("connection", ConnectionType, GRANULAR_CONNECTIONS, name)


def canonical_event(name: str) -> Canonical[EventType]:
    """Resolve an event type or granular event name to the type stored on the event."""
    return _resolve("event", EventType, GRANULAR_EVENTS, name)


def thing_type(name: str) -> ThingType:
    """The ``ThingType`` called ``name``; granular aliases are not thing types (use ``canonical_thing``)."""
    try:
        return ThingType(name)
    except ValueError:
        raise UnknownOntologyType("thing", name) from None


def is_thing_type(name: str) -> bool:
    """Whether ``name`` is a ``ThingType`` value."""
    return name in ThingType.__members__.values()
