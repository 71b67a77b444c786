"""Signed inbound webhooks: the sources an org lets a third party sign for, and the receipt of one webhook.

An org admin registers a source (`WEBHOOK_SOURCE_CREATE`): its signing scheme, its secret (generated, or the
provider's; returned once by the create and the rotate, sealed at rest, never in any other reply or event), the
tolerance of its timestamps, and what each of the provider's event types becomes in the ontology. The gateway's
public `POST /v1/webhooks/in/{source_id}` hands the raw body and its headers to `WEBHOOK_RECEIVE` (no API key: the
signature is the credential), which verifies, deduplicates by webhook id and acts on the mapping.

Schemes:
- `standard` (Standard Webhooks): `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256
  of "<id>.<timestamp>.<body>">`; the secret is `whsec_<base64>`.
- `hmac`: one header (`signature_header`) carrying `signature_prefix` + the hex or base64 HMAC-SHA256 of the body,
  or of `"<timestamp>.<body>"` when `timestamp_header` names the header with the unix timestamp; the webhook id is
  the `id_header`'s value, else the SHA-256 of what was signed (an exact replay is the same webhook).
"""

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, model_validator

from shared.contracts.tenancy.errors import TenancyError
from shared.kernel import subjects
from shared.kernel.envelope import Payload, register_message
from shared.kernel.errors import InvalidRequest, NotFound, Unauthenticated
from shared.kernel.ontology import Role, UnknownOntologyType, canonical_event

MAX_BODY_BYTES = 256 * 1024
"""The largest webhook body the receiver takes (providers send a few kB; the bus carries 1 MB)."""
MAX_HEADERS = 64
DEFAULT_TOLERANCE = 300
"""Seconds a signed timestamp may be away from the receiver's clock (Standard Webhooks: 5 minutes)."""
STANDARD_SECRET_PREFIX = "whsec_"

HeaderName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,64}$", to_lower=True)]
JsonPath = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]+(\[\d{1,3}\])*(\.[A-Za-z0-9_-]+(\[\d{1,3}\])*){0,9}$")]
"""A dotted path into the body: `type`, `data.email`, `data.email_addresses[0].email_address`."""
ProviderType = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:/-]{1,100}$")]
SourceName = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
_ROLE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


class WebhookSignatureMissing(TenancyError, Unauthenticated):
    """The webhook carries none (or not all) of the signing headers its source's scheme needs."""

    code = "webhook_signature_missing"


class WebhookSignatureInvalid(TenancyError, Unauthenticated):
    """The signature does not match the body under the source's secret, or its headers are malformed."""

    code = "webhook_signature_invalid"


class WebhookTimestampOutOfTolerance(TenancyError, Unauthenticated):
    """The signed timestamp is further from now than the source's tolerance: a replay, or a clock far off."""

    code = "webhook_timestamp_out_of_tolerance"


class WebhookSourceNotFound(TenancyError, NotFound):
    """No such webhook source (in the caller's org; for a receiver, anywhere)."""


class WebhookMappingFailed(TenancyError, InvalidRequest):
    """The webhook is signed, but its mapping cannot act on its body (e.g. no email where the invite needs one)."""

    code = "webhook_mapping_failed"


def _ontology_event(name: str) -> str:
    try:
        canonical_event(name)
    except UnknownOntologyType as error:
        raise ValueError(str(error)) from None
    return name


def _invitable_role(role: str) -> str:
    if not _ROLE.match(role) or role in (Role.ORG_OWNER, Role.PLATFORM_OWNER):
        raise ValueError("a webhook may invite into any role but an owner's")
    return role


class WebhookMapping(Payload):
    """What one provider event type becomes: an ontology event, or a person invited (tenancy issues the invite)."""

    action: Literal["event", "invite"] = "event"
    event_type: Annotated[str, AfterValidator(_ontology_event)] | None = Field(
        None, description="`event`: an ontology event type or granular name (`payment_processed`, `content_changed`).")
    email_path: JsonPath = Field("data.email", description="`invite`: where the body carries the person's email.")
    role: Annotated[str, AfterValidator(_invitable_role)] = Field("org_user", description="`invite`: the role offered.")

    @model_validator(mode="after")
    def _needs_event_type(self) -> "WebhookMapping":
        if self.action == "event" and self.event_type is None:
            raise ValueError("an `event` mapping names its `event_type`")
        return self


class WebhookSourceCreate(Payload):
    name: SourceName
    scheme: Literal["standard", "hmac"] = "standard"
    secret: str | None = Field(None, min_length=16, max_length=256, description=(
        "The provider's signing secret (`whsec_<base64>` for `standard`); omitted, one is generated. Either way it "
        "is returned by this create only."))
    signature_header: HeaderName | None = Field(None, description="`hmac`: the header carrying the signature.")
    signature_encoding: Literal["hex", "base64"] = "hex"
    signature_prefix: str = Field("", max_length=20, pattern=r"^[A-Za-z0-9_=,.-]*$",
                                  description="`hmac`: what precedes the digest in the header, e.g. `sha256=`.")
    timestamp_header: HeaderName | None = Field(None, description="`hmac`: a unix-timestamp header, signed as `<t>.<body>`.")
    id_header: HeaderName | None = Field(None, description="`hmac`: the provider's delivery id header (dedup key).")
    type_path: JsonPath = Field("type", description="Where the body carries the provider's event type.")
    type_header: HeaderName | None = Field(None, description="Or the header that carries it (e.g. `x-github-event`).")
    tolerance_seconds: int = Field(DEFAULT_TOLERANCE, ge=1, le=86400)
    max_per_minute: int = Field(600, ge=1, le=100_000, description="Webhooks this source may deliver per minute.")
    mappings: dict[ProviderType, WebhookMapping] = Field(default_factory=dict, max_length=100, description=(
        "Provider event type -> what it becomes; an unmapped type is stored and acknowledged with an event that "
        "says so."))

    @model_validator(mode="after")
    def _hmac_needs_header(self) -> "WebhookSourceCreate":
        if self.scheme == "hmac" and self.signature_header is None:
            raise ValueError("an `hmac` source names its `signature_header`")
        return self


class WebhookSourceRef(Payload):
    source_id: UUID


class WebhookSourceRotate(WebhookSourceRef):
    secret: str | None = Field(None, min_length=16, max_length=256, description="The new secret; omitted, generated.")
    grace_seconds: int = Field(3600, ge=0, le=7 * 86400,
                               description="How long the previous secret still verifies (0: not at all).")


class WebhookSourceList(Payload):
    limit: int = Field(100, ge=1, le=1000)


class WebhookSource(BaseModel):
    """A source as replies show it: never its secret, only the secret's last four characters."""

    id: UUID
    org_id: UUID
    name: str
    scheme: Literal["standard", "hmac"]
    secret_hint: str
    signature_header: str | None
    signature_encoding: Literal["hex", "base64"] | None
    signature_prefix: str
    timestamp_header: str | None
    id_header: str | None
    type_path: str
    type_header: str | None
    tolerance_seconds: int
    max_per_minute: int
    mappings: dict[str, WebhookMapping]
    receiver_path: str = Field(description="Where the provider posts: `/v1/webhooks/in/<id>` on the gateway.")
    previous_secret_valid_until: datetime | None = None
    created_by: UUID
    created_at: datetime
    updated_at: datetime
    rotated_at: datetime | None = None


class WebhookSourceIssued(BaseModel):
    source: WebhookSource
    secret: str = Field(description="The signing secret: shown once, give it to the provider.")


class WebhookSources(BaseModel):
    sources: list[WebhookSource]


class WebhookSourceDeleted(BaseModel):
    source_id: UUID


class WebhookReceive(Payload):
    source_id: UUID
    body: str = Field(max_length=MAX_BODY_BYTES, description="The raw body as received (UTF-8).")
    headers: dict[Annotated[str, StringConstraints(max_length=128)], Annotated[str, StringConstraints(max_length=4096)]] = (
        Field(default_factory=dict, max_length=MAX_HEADERS, description="The request's headers, names lower-cased."))


class WebhookAccepted(BaseModel):
    webhook_id: str
    duplicate: bool = Field(description="True when this webhook id was received before: nothing happened again.")
    outcome: Literal["mapped", "unmapped"]
    event_type: str = Field(description="The ontology event it became (or the unmapped record's).")
    event_id: UUID | None = Field(None, description="The event's id (the first receipt's, for a duplicate).")


def _message(type_: str, verb: str, payload: type[Payload], result: type[BaseModel], **options: Any) -> Any:
    return register_message(f"tenancy.{type_}", subjects.command("tenancy", verb), payload, result, **options)


WEBHOOK_SOURCE_CREATE = _message("webhook_source.create", "webhook_sources.create", WebhookSourceCreate,
                                 WebhookSourceIssued, permission="webhook_sources:create")
WEBHOOK_SOURCE_LIST = _message("webhook_source.list", "webhook_sources.list", WebhookSourceList, WebhookSources,
                               permission="webhook_sources:list")
WEBHOOK_SOURCE_GET = _message("webhook_source.get", "webhook_sources.get", WebhookSourceRef, WebhookSource,
                              permission="webhook_sources:read")
WEBHOOK_SOURCE_DELETE = _message("webhook_source.delete", "webhook_sources.delete", WebhookSourceRef,
                                 WebhookSourceDeleted, permission="webhook_sources:delete")
WEBHOOK_SOURCE_ROTATE = _message("webhook_source.rotate", "webhook_sources.rotate", WebhookSourceRotate,
                                 WebhookSourceIssued, permission="webhook_sources:rotate")
WEBHOOK_RECEIVE = _message("webhook.receive", "webhooks.receive", WebhookReceive, WebhookAccepted, requires_auth=False)
