"""An org's identity for the graph to mirror: the org, its members and their profiles (service identities only)."""

from services.tenancy import repository as repo, repository_identity as identity_repo, repository_packs as packs_repo
from services.tenancy.service_access import is_service_identity
from shared.contracts.tenancy import (
    IdentityQuery,
    IdentitySnapshot,
    MemberIdentity,
    OrganizationNotFound,
    OrgIdentity,
)
from shared.kernel.errors import Forbidden
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext


async def snapshot(ctx: WorkContext, payload: IdentityQuery) -> IdentitySnapshot:
    """The envelope's org as it stands now; with `person_id`, also every org that person belongs to."""
    if not is_service_identity(ctx):
        raise Forbidden("only a service reads an organization's identity snapshot")
    require(ctx.auth, "identity", "read")
    org = await repo.get_org(ctx.session, ctx.auth.org_id)
    if org is None:
        raise OrganizationNotFound(f"organization {ctx.auth.org_id} not found")
    members = [
        MemberIdentity(
            org_id=row.org_id, person_id=row.person_id, role=row.role, permissions=list(row.permissions),
            invited_by=row.invited_by, invited_at=row.invited_at, joined_at=row.joined_at, email=row.email,
            username=row.username, display_name=row.display_name, bio=row.bio, avatar=row.avatar,
        )
        for row in await identity_repo.members_with_profiles(ctx.session, org.id)
    ]
    person_orgs = []
    if payload.person_id is not None:
        async with repo.platform_access(ctx.session):
            person_orgs = await repo.org_ids_of(ctx.session, payload.person_id)
    return IdentitySnapshot(
        organization=OrgIdentity(id=org.id, name=org.name, slug=org.slug, domain=org.domain, plan=org.plan,
                                 status=org.status,
                                 installed_packs=await packs_repo.installed_pack_names(ctx.session, org.id)),
        members=members, person_orgs=person_orgs,
    )
