"""The `properties` models of the spec's core, agent, content and business thing types.

Each keeps unknown keys (the spec's "user-safe additions"). Identity fields the spec makes
mandatory are required; counters the platform maintains itself default to zero.
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Text = Annotated[str, StringConstraints(min_length=1)]
Count = Annotated[int, Field(ge=0)]
Amount = Annotated[float, Field(ge=0)]
Ratio = Annotated[float, Field(ge=0, le=1)]
Timestamp = Annotated[int, Field(ge=0, description="Milliseconds since the epoch, as the spec's numbers.")]
Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
SemVer = Annotated[str, StringConstraints(pattern=r"^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$")]


class Props(BaseModel):
    model_config = ConfigDict(extra="allow", strict=False)


class Open(Props):
    """A type the spec gives no structure for: any object."""


class BrandColors(Props):
    primary: str
    secondary: str
    accent: str


class Creator(Props):
    email: Email
    username: Text
    displayName: Text
    bio: str | None = None
    avatar: str | None = None
    niche: list[str] = Field(default_factory=list)
    expertise: list[str] = Field(default_factory=list)
    targetAudience: str | None = None
    brandColors: BrandColors | None = None
    totalFollowers: Count = 0
    totalContent: Count = 0
    totalRevenue: Amount = 0
    role: Literal["platform_owner", "org_owner", "org_user", "customer"]
    organizationId: str | None = None
    permissions: list[str] = Field(default_factory=list)


class AudienceMember(Props):
    email: Email | None = None
    username: str | None = None
    role: Literal["customer", "org_user"] = "customer"


class OrgNumbers(Props):
    users: Count = 0
    storage: Count = 0
    apiCalls: Count = 0


class OrgSettings(Props):
    allowSignups: bool = False
    requireEmailVerification: bool = False
    enableTwoFactor: bool = False
    allowedDomains: list[str] = Field(default_factory=list)


class Organization(Props):
    slug: Annotated[str, StringConstraints(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")]
    domain: str | None = None
    logo: str | None = None
    description: str | None = None
    status: Literal["active", "suspended", "trial", "cancelled"] = "active"
    plan: Literal["starter", "pro", "enterprise"] = "starter"
    limits: OrgNumbers = OrgNumbers()
    usage: OrgNumbers = OrgNumbers()
    billing: dict[str, Any] = Field(default_factory=dict)
    settings: OrgSettings = OrgSettings()
    trialEndsAt: Timestamp | None = None


class AiClone(Props):
    voiceId: str | None = None
    voiceProvider: Literal["elevenlabs", "azure", "custom"] | None = None
    appearanceId: str | None = None
    appearanceProvider: Literal["d-id", "heygen", "custom"] | None = None
    systemPrompt: Text
    temperature: Annotated[float, Field(ge=0, le=2)] = 0.7
    knowledgeBaseSize: Count = 0
    lastTrainingDate: Timestamp | None = None
    totalInteractions: Count = 0
    satisfactionScore: Amount = 0


class Agent(Props):
    agentType: Text | None = None
    systemPrompt: Text
    model: Text
    temperature: Annotated[float, Field(ge=0, le=2)] = 0.7
    capabilities: list[str] = Field(default_factory=list)
    tools: list[str] = Field(default_factory=list)
    totalExecutions: Count = 0
    successRate: Ratio = 0
    averageExecutionTime: Amount = 0


class Token(Props):
    contractAddress: Text
    blockchain: Literal["base", "ethereum", "polygon"]
    standard: Literal["ERC20", "ERC721", "ERC1155"]
    totalSupply: Amount
    circulatingSupply: Amount = 0
    price: Amount = 0
    marketCap: Amount = 0
    utility: list[str] = Field(default_factory=list)
    burnRate: Amount = 0
    holders: Count = 0
    transactions24h: Count = 0
    volume24h: Amount = 0


class Course(Props):
    title: Text
    description: str = ""
    thumbnail: str | None = None
    modules: Count = 0
    lessons: Count = 0
    totalDuration: Amount = 0
    price: Amount
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{3,5}$")]
    tokenPrice: Amount | None = None
    enrollments: Count = 0
    completions: Count = 0
    averageRating: Annotated[float, Field(ge=0, le=5)] = 0
    generatedBy: Literal["ai", "human", "hybrid"] = "human"
    personalizationLevel: Literal["none", "basic", "advanced"] = "none"


class WebsiteAnalytics(Props):
    visitors30d: Count = 0
    pageViews: Count = 0
    conversionRate: Ratio = 0


class Website(Props):
    domain: Text
    subdomain: Text
    template: Literal["minimal", "showcase", "portfolio"]
    customCSS: str | None = None
    customDomain: str | None = None
    sslEnabled: bool = True
    analytics: WebsiteAnalytics = WebsiteAnalytics()


class Livestream(Props):
    title: Text
    scheduledAt: Timestamp
    startedAt: Timestamp | None = None
    endedAt: Timestamp | None = None
    platform: Literal["youtube", "twitch", "custom"]
    streamUrl: Text
    recordingUrl: str | None = None
    viewersPeak: Count = 0
    viewersAverage: Amount = 0
    chatEnabled: bool = True
    aiCloneMixEnabled: bool = False
    status: Literal["scheduled", "live", "ended", "cancelled"] = "scheduled"


class Payment(Props):
    """Both shapes the spec gives: a traditional payment and a protocol (x402/acp/ap2) payment."""

    amount: Amount
    currency: str | None = None
    paymentMethod: Literal["stripe", "crypto"] | None = None
    protocol: Literal["x402", "acp", "ap2", "traditional"] | None = None
    scheme: str | None = None
    network: str | None = None
    stripePaymentIntentId: str | None = None
    txHash: str | None = None
    invoiceId: str | None = None
    status: Literal["pending", "completed", "failed", "refunded", "requested", "verified", "processed"]
    fees: Amount = 0
    netAmount: Amount | None = None
    processedAt: Timestamp | None = None


class Subscription(Props):
    tier: Literal["starter", "pro", "enterprise"]
    price: Amount
    currency: Text
    interval: Literal["monthly", "yearly"]
    status: Literal["active", "cancelled", "past_due", "expired"]
    currentPeriodStart: Timestamp
    currentPeriodEnd: Timestamp
    cancelAt: Timestamp | None = None
    stripeSubscriptionId: str | None = None


class Metric(Props):
    name: Text
    value: float
    unit: str = ""
    timestamp: Timestamp
    period: Literal["realtime", "hourly", "daily", "weekly", "monthly"]
    change: float = 0
    trend: Literal["up", "down", "stable"] = "stable"


class Insight(Props):
    title: Text
    description: str = ""
    category: Literal["performance", "audience", "revenue", "content"]
    confidence: Ratio
    actionable: bool = False
    recommendations: list[str] = Field(default_factory=list)
    generatedAt: Timestamp | None = None
    generatedBy: str | None = None


class Referral(Props):
    referrerCode: Text
    referredEmail: Email
    referredUserId: str | None = None
    status: Literal["pending", "converted", "expired"] = "pending"
    tokensEarned: Amount = 0
    bonusEarned: Amount | None = None
    conversionDate: Timestamp | None = None
    expiresAt: Timestamp


class Notification(Props):
    title: Text
    message: Text
    type: Literal["info", "success", "warning", "error"] = "info"
    channel: Literal["email", "sms", "push", "in_app"]
    read: bool = False
    readAt: Timestamp | None = None
    actionUrl: str | None = None
    actionLabel: str | None = None
