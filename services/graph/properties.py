"""The structure of `properties` per thing type, as the spec's "Properties by Thing Type" gives it.

Every model keeps unknown keys (the spec's "user-safe additions") and checks the keys it knows.
Identity fields the spec makes mandatory are required; counters and aggregates the platform
maintains itself (`totalFollowers`, `enrollments`, ...) default to zero, so a caller can create
a thing before it has any history. Types the spec does not detail accept any object.
"""

from typing import Any

from services.graph.property_models import (
    Agent,
    AiClone,
    AudienceMember,
    Course,
    Creator,
    Insight,
    Livestream,
    Metric,
    Notification,
    Open,
    Organization,
    Payment,
    Props,
    Referral,
    Subscription,
    Token,
    Website,
)
from services.graph.property_models_platform import (
    ElizaosPlugin,
    ExternalAgent,
    ExternalConnection,
    ExternalWorkflow,
    Mandate,
    OAuthAccount,
    PasswordResetToken,
    Plugin,
    Product,
    Session,
    UiPreferences,
    VerificationToken,
)
from shared.kernel.ontology import THING_CATEGORIES, ThingType

SECRET_KEYS = frozenset({
    "apiKey", "webhookSecret", "token", "accessToken", "refreshToken", "idToken", "credentials",
    "password", "secret", "privateKey",
})
"""Property keys (at any depth) whose values are never returned in clear."""

MASK = "********"


_BY_TYPE: dict[ThingType, type[Props]] = {
    ThingType.CREATOR: Creator,
    ThingType.AUDIENCE_MEMBER: AudienceMember,
    ThingType.ORGANIZATION: Organization,
    ThingType.AI_CLONE: AiClone,
    **{t: Agent for t in THING_CATEGORIES["business_agents"]},
    ThingType.TOKEN: Token,
    ThingType.COURSE: Course,
    ThingType.WEBSITE: Website,
    ThingType.LIVESTREAM: Livestream,
    ThingType.PAYMENT: Payment,
    ThingType.SUBSCRIPTION: Subscription,
    ThingType.METRIC: Metric,
    ThingType.INSIGHT: Insight,
    ThingType.REFERRAL: Referral,
    ThingType.NOTIFICATION: Notification,
    ThingType.EXTERNAL_AGENT: ExternalAgent,
    ThingType.EXTERNAL_WORKFLOW: ExternalWorkflow,
    ThingType.EXTERNAL_CONNECTION: ExternalConnection,
    ThingType.SESSION: Session,
    ThingType.OAUTH_ACCOUNT: OAuthAccount,
    ThingType.VERIFICATION_TOKEN: VerificationToken,
    ThingType.PASSWORD_RESET_TOKEN: PasswordResetToken,
    ThingType.UI_PREFERENCES: UiPreferences,
    ThingType.MANDATE: Mandate,
    ThingType.PRODUCT: Product,
    **{t: Plugin for t in THING_CATEGORIES["plugin"]},
    ThingType.ELIZAOS_PLUGIN: ElizaosPlugin,
}


def properties_model(thing_type: ThingType) -> type[Props]:
    return _BY_TYPE.get(thing_type, Open)


def is_structured(thing_type: ThingType) -> bool:
    """Whether the spec gives this type a structure (else its properties are free-form)."""
    return thing_type in _BY_TYPE


def mask_secrets(value: Any) -> Any:
    """A copy with every secret-named value replaced by `MASK`, at any depth."""
    if isinstance(value, dict):
        return {k: (MASK if k in SECRET_KEYS and v is not None else mask_secrets(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_secrets(v) for v in value]
    return value


def keep_masked_secrets(new: Any, old: Any) -> Any:
    """Where a client sends `MASK` back (it read a masked thing), keep the stored secret."""
    if isinstance(new, dict) and isinstance(old, dict):
        return {k: (old.get(k) if v == MASK and k in SECRET_KEYS else keep_masked_secrets(v, old.get(k))) for k, v in new.items()}
    return new
