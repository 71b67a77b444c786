"""The ontology's types grouped as the specification groups them.

The groups partition each type enum (``tests/unit/test_ontology.py`` checks it), so a type added
without a category is caught; the ``consolidated`` groups are the types whose variant lives in metadata.
"""

from collections.abc import Mapping
from types import MappingProxyType

from shared.kernel.ontology.types import ConnectionType, EventType, ThingType

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

SELF_LINK_ALLOWED: frozenset[ConnectionType] = frozenset()
"""Connection types that may link a thing to itself. The spec says a thing cannot connect to itself
("usually") and names no exception, so none is allowed until a real case appears."""
