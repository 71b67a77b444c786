"""Valid and invalid `properties` per thing type, straight from the spec's "Properties by Thing Type"."""

from typing import Any

from shared.kernel.ontology import THING_CATEGORIES, ThingType

_USER = "0190a000-0000-7000-8000-000000000001"
_AGENT = {"systemPrompt": "You plan.", "model": "claude", "temperature": 0.3, "capabilities": ["plan"]}

VALID: dict[ThingType, dict[str, Any]] = {
    ThingType.CREATOR: {
        "email": "ada@example.test", "username": "ada", "displayName": "Ada", "niche": ["fitness"],
        "expertise": ["running"], "targetAudience": "runners", "totalFollowers": 12000, "role": "org_owner",
        "brandColors": {"primary": "#000", "secondary": "#111", "accent": "#222"},
    },
    ThingType.AUDIENCE_MEMBER: {"email": "fan@example.test", "role": "customer"},
    ThingType.ORGANIZATION: {
        "slug": "acme", "plan": "pro", "status": "trial", "limits": {"users": 5, "storage": 10, "apiCalls": 1000},
        "settings": {"allowSignups": True, "requireEmailVerification": False, "enableTwoFactor": True},
    },
    ThingType.AI_CLONE: {"voiceProvider": "elevenlabs", "systemPrompt": "Be Ada.", "temperature": 0.7},
    **{t: dict(_AGENT) for t in THING_CATEGORIES["business_agents"]},
    ThingType.TOKEN: {"contractAddress": "0xabc", "blockchain": "base", "standard": "ERC20", "totalSupply": 1_000_000},
    ThingType.COURSE: {"title": "Run", "price": 99, "currency": "USD", "generatedBy": "ai", "modules": 3},
    ThingType.WEBSITE: {"domain": "ada.one.ie", "subdomain": "ada", "template": "minimal", "sslEnabled": True},
    ThingType.LIVESTREAM: {"title": "Live", "scheduledAt": 1_700_000_000_000, "platform": "youtube", "streamUrl": "rtmp://x"},
    ThingType.PAYMENT: {"amount": 99.0, "currency": "usd", "paymentMethod": "stripe", "status": "completed", "fees": 3},
    ThingType.SUBSCRIPTION: {
        "tier": "pro", "price": 29, "currency": "USD", "interval": "monthly", "status": "active",
        "currentPeriodStart": 1, "currentPeriodEnd": 2,
    },
    ThingType.METRIC: {"name": "revenue", "value": 10.5, "unit": "usd", "timestamp": 1, "period": "daily", "trend": "up"},
    ThingType.INSIGHT: {"title": "Grow", "category": "audience", "confidence": 0.8, "actionable": True},
    ThingType.REFERRAL: {"referrerCode": "REF1", "referredEmail": "new@example.test", "expiresAt": 5},
    ThingType.NOTIFICATION: {"title": "Hi", "message": "Hello", "channel": "in_app", "type": "success"},
    ThingType.EXTERNAL_AGENT: {"platform": "elizaos", "agentId": "eliza-1", "name": "Eliza", "status": "online"},
    ThingType.EXTERNAL_WORKFLOW: {
        "platform": "n8n", "workflowId": "wf-1", "name": "Flow", "active": True,
        "inputSchema": {"email": {"type": "string", "required": True, "description": "who"}},
    },
    ThingType.EXTERNAL_CONNECTION: {
        "platform": "n8n", "name": "n8n prod", "apiKey": "sk-live-123", "connectionType": "rest",
        "authentication": {"type": "apiKey", "credentials": {"key": "sk-live-123"}},
    },
    ThingType.SESSION: {"userId": _USER, "token": "hashed-token", "expiresAt": 10},
    ThingType.OAUTH_ACCOUNT: {"userId": _USER, "provider": "github", "providerAccountId": "42", "accessToken": "gho_x"},
    ThingType.VERIFICATION_TOKEN: {"userId": _USER, "token": "t", "type": "email", "expiresAt": 10},
    ThingType.PASSWORD_RESET_TOKEN: {"userId": _USER, "token": "t", "expiresAt": 10},
    ThingType.UI_PREFERENCES: {"userId": _USER, "theme": "dark", "language": "en", "dashboardLayout": {"defaultView": "kanban"}},
    ThingType.MANDATE: {"mandateType": "cart", "items": [{"sku": "a"}], "total": 10},
    ThingType.PRODUCT: {"price": 10, "currency": "USD", "protocol": "acp"},
    ThingType.ELIZAOS_PLUGIN: {"pluginMetadata": {"name": "plugin-solana", "version": "1.2.3"}},
}
"""Every structured type has a valid sample; other types take any object (here: a user-safe addition)."""

INVALID: dict[ThingType, tuple[dict[str, Any], str]] = {
    ThingType.CREATOR: ({**VALID[ThingType.CREATOR], "email": "not-an-email"}, "email"),
    ThingType.AUDIENCE_MEMBER: ({"role": "king"}, "role"),
    ThingType.ORGANIZATION: ({"slug": "Not A Slug"}, "slug"),
    ThingType.AI_CLONE: ({"systemPrompt": "x", "voiceProvider": "nope"}, "voiceProvider"),
    **{t: ({**_AGENT, "agentType": "wrong"}, "agentType") for t in THING_CATEGORIES["business_agents"]},
    ThingType.TOKEN: ({**VALID[ThingType.TOKEN], "blockchain": "bitcoin"}, "blockchain"),
    ThingType.COURSE: ({"title": "Run", "currency": "USD"}, "price"),
    ThingType.WEBSITE: ({**VALID[ThingType.WEBSITE], "template": "fancy"}, "template"),
    ThingType.LIVESTREAM: ({**VALID[ThingType.LIVESTREAM], "status": "paused"}, "status"),
    ThingType.PAYMENT: ({"amount": -1, "status": "completed"}, "amount"),
    ThingType.SUBSCRIPTION: ({**VALID[ThingType.SUBSCRIPTION], "interval": "weekly"}, "interval"),
    ThingType.METRIC: ({**VALID[ThingType.METRIC], "period": "yearly"}, "period"),
    ThingType.INSIGHT: ({**VALID[ThingType.INSIGHT], "confidence": 1.5}, "confidence"),
    ThingType.REFERRAL: ({"referrerCode": "R", "referredEmail": "x@y.z"}, "expiresAt"),
    ThingType.NOTIFICATION: ({**VALID[ThingType.NOTIFICATION], "channel": "fax"}, "channel"),
    ThingType.EXTERNAL_AGENT: ({"platform": "elizaos", "name": "Eliza"}, "agentId"),
    ThingType.EXTERNAL_WORKFLOW: (
        {**VALID[ThingType.EXTERNAL_WORKFLOW], "inputSchema": {"x": {"type": "date"}}}, "inputSchema"
    ),
    ThingType.EXTERNAL_CONNECTION: ({**VALID[ThingType.EXTERNAL_CONNECTION], "connectionType": "ftp"}, "connectionType"),
    ThingType.SESSION: ({"userId": _USER, "expiresAt": 10}, "token"),
    ThingType.OAUTH_ACCOUNT: ({**VALID[ThingType.OAUTH_ACCOUNT], "provider": "myspace"}, "provider"),
    ThingType.VERIFICATION_TOKEN: ({**VALID[ThingType.VERIFICATION_TOKEN], "type": "sms"}, "type"),
    ThingType.PASSWORD_RESET_TOKEN: ({"userId": _USER, "token": "t", "expiresAt": "soon"}, "expiresAt"),
    ThingType.UI_PREFERENCES: ({"userId": _USER, "theme": "neon"}, "theme"),
    ThingType.MANDATE: ({"mandateType": "wish"}, "mandateType"),
    ThingType.PRODUCT: ({"price": -5}, "price"),
    ThingType.ELIZAOS_PLUGIN: ({"pluginMetadata": {"name": "p", "version": "latest"}}, "pluginMetadata"),
    **{t: ({"pluginMetadata": {"version": "1.0.0"}}, "pluginMetadata") for t in THING_CATEGORIES["plugin"] - {ThingType.ELIZAOS_PLUGIN}},
}
"""One violation per structured type, with the property the error must name first."""


def valid_properties(thing_type: ThingType) -> dict[str, Any]:
    return {**VALID.get(thing_type, {}), "kind": "sample"}
