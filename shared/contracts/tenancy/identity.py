"""`tenancy.identity.snapshot`: an org's identity as the graph mirrors it (the org, its members, their profiles).

Tenancy is the authority for organizations, people and memberships; the graph keeps a thing
for each with the same id (DESIGN.md, "Identity across services") and reconciles it with this
snapshot whenever tenancy's events say something changed. Only a service identity holding the
`identity:read` grant may ask: it carries every member's email.
"""

from uuid import UUID

from pydantic import BaseModel, Field

from shared.contracts.tenancy.messages import Member
from shared.kernel import subjects
from shared.kernel.envelope import Payload, register_message


class IdentityQuery(Payload):
    person_id: UUID | None = Field(None, description="Also list the organizations this person belongs to.")


class OrgIdentity(BaseModel):
    id: UUID
    name: str
    slug: str
    domain: str | None
    plan: str
    status: str
    installed_packs: list[str] = Field(default_factory=list, description="Seed 001's `installedPacks`.")


class MemberIdentity(Member):
    """A membership (the spec's `member_of` metadata) with the member's whole profile."""

    bio: str | None
    avatar: str | None


class IdentitySnapshot(BaseModel):
    organization: OrgIdentity
    members: list[MemberIdentity]
    person_orgs: list[UUID] = Field(default_factory=list, description="The asked person's organizations.")


IDENTITY_SNAPSHOT = register_message(
    "tenancy.identity.snapshot", subjects.command("tenancy", "identity.snapshot"), IdentityQuery, IdentitySnapshot,
    permission="identity:read",
)
