"""The `properties` models of integrations, auth, preferences, protocol entities and plugins."""

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from services.graph.property_models import (
    Amount,
    Count,
    Props,
    Ratio,
    SemVer,
    Text,
    Timestamp,
)


class ExternalAgent(Props):
    platform: Literal["elizaos", "autogen", "crewai", "langchain", "custom"]
    agentId: Text
    name: Text
    description: str | None = None
    capabilities: list[str] = Field(default_factory=list)
    apiEndpoint: str | None = None
    websocketUrl: str | None = None
    status: Literal["online", "offline", "busy", "unknown"] = "unknown"
    lastSeen: Timestamp | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    conversationCount: Count = 0
    messageCount: Count = 0


class SchemaField(Props):
    type: Literal["string", "number", "boolean", "object", "array"]
    required: bool = False
    description: str = ""


class ExternalWorkflow(Props):
    platform: Literal["n8n", "zapier", "make", "pipedream", "custom"]
    workflowId: Text
    name: Text
    description: str = ""
    webhookUrl: str | None = None
    active: bool = True
    tags: list[str] = Field(default_factory=list)
    inputSchema: dict[str, SchemaField] = Field(default_factory=dict)
    outputSchema: dict[str, SchemaField] = Field(default_factory=dict)
    executionCount: Count = 0
    successRate: Ratio = 0
    averageExecutionTime: Amount = 0
    lastExecutedAt: Timestamp | None = None


class Authentication(Props):
    type: Literal["apiKey", "oauth", "basic", "bearer", "custom"]
    credentials: Any = None


class ExternalConnection(Props):
    platform: Literal["elizaos", "n8n", "zapier", "make", "autogen", "custom"]
    name: Text
    baseUrl: str | None = None
    apiKey: str | None = None
    websocketUrl: str | None = None
    webhookSecret: str | None = None
    connectionType: Literal["rest", "websocket", "webhook", "graphql"]
    authentication: Authentication
    status: Literal["active", "inactive", "error"] = "active"
    lastConnectedAt: Timestamp | None = None
    lastError: str | None = None
    linkedEntityIds: list[str] = Field(default_factory=list)
    rateLimits: dict[str, Count] | None = None


class Session(Props):
    userId: Text
    token: Text
    expiresAt: Timestamp
    ipAddress: str | None = None
    userAgent: str | None = None
    lastActivityAt: Timestamp | None = None


class OAuthAccount(Props):
    userId: Text
    provider: Literal["github", "google", "discord", "twitter"]
    providerAccountId: Text
    accessToken: str | None = None
    refreshToken: str | None = None
    expiresAt: Timestamp | None = None
    tokenType: str | None = None
    scope: str | None = None
    idToken: str | None = None


class VerificationToken(Props):
    userId: Text
    token: Text
    type: Literal["email", "two_factor"]
    expiresAt: Timestamp
    attempts: Count = 0
    maxAttempts: Annotated[int, Field(ge=1)] = 5
    verifiedAt: Timestamp | None = None


class PasswordResetToken(Props):
    userId: Text
    token: Text
    expiresAt: Timestamp
    usedAt: Timestamp | None = None


class DashboardLayout(Props):
    sidebarCollapsed: bool = False
    defaultView: Literal["grid", "list", "kanban"] = "grid"
    itemsPerPage: Annotated[int, Field(ge=1, le=500)] = 20


class NotificationPrefs(Props):
    email: bool = True
    push: bool = True
    sms: bool = False
    inApp: bool = True


class Accessibility(Props):
    reducedMotion: bool = False
    highContrast: bool = False
    fontSize: Literal["small", "medium", "large"] = "medium"


class UiPreferences(Props):
    userId: Text
    theme: Literal["light", "dark", "system"] = "system"
    language: Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")] = "en"
    timezone: str = "UTC"
    dashboardLayout: DashboardLayout = DashboardLayout()
    notifications: NotificationPrefs = NotificationPrefs()
    accessibility: Accessibility = Accessibility()
    customSettings: Any = None


class Mandate(Props):
    """AP2's mandates folded into one type (`mandateType`): V1 intent and cart, V2 open and closed (`kind`:
    payment or checkout)."""

    mandateType: Literal["intent", "cart", "open", "closed"]
    protocol: Literal["ap2", "acp", "x402", "native"] = "ap2"
    intent: dict[str, Any] | None = None
    items: list[dict[str, Any]] = Field(default_factory=list)
    subtotal: Amount | None = None
    tax: Amount | None = None
    total: Amount | None = None
    status: str | None = None
    signature: str | None = None
    credentialHash: str | None = None


class Product(Props):
    price: Amount | None = None
    currency: str | None = None
    protocol: Literal["acp", "ap2", "x402", "native"] | None = None


class PluginMetadata(Props):
    name: Text
    version: SemVer
    settings: dict[str, Any] = Field(default_factory=dict)


class Plugin(Props):
    """ElizaOS plugin things: settings live in `pluginMetadata.settings` (seeds 004)."""

    pluginMetadata: PluginMetadata | None = None


class ElizaosPlugin(Plugin):
    pluginMetadata: PluginMetadata
