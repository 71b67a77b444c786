"""The type vocabularies of the ontology: what a thing, a connection, an event or a knowledge item can be.

These are the consolidated names the bus and the database store; granular aliases of them live in
``granular``, their groupings in ``categories``.
"""

from enum import StrEnum


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
