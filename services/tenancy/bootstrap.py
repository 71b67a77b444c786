"""The platform's first org, its owner and a key: what `one up` runs once on a fresh system.

Idempotent: a second run finds the platform org and creates nothing (and, since
a key's secret is never stored, returns no key unless asked for a fresh one).
"""

from dataclasses import dataclass

from services.tenancy import repository as repo
from services.tenancy.service import ensure_person, insert_organization, load_org, person_model
from services.tenancy.service_keys import Credentials, issue_key, load_pepper
from services.tenancy.service_members import join
from services.tenancy.settings import TenancySettings
from shared.contracts.tenancy import Organization, OrganizationCreate, Person, PersonIn, SettingsPatch
from shared.kernel.errors import Conflict
from shared.kernel.ids import uuid7
from shared.kernel.ontology import OrgPlan, OrgStatus, Role
from shared.runtime.context import setup_context
from shared.runtime.db import Database


@dataclass
class Bootstrapped:
    organization: Organization
    owner: Person
    api_key: str | None
    created: bool


async def bootstrap_platform(
    db: Database, settings: TenancySettings, *, email: str | None = None, name: str = "ONE Platform", slug: str = "platform",
    new_key_if_exists: bool = False,
) -> Bootstrapped:
    """Create the platform org, its platform owner and an API key, once; events go out via tenancy's outbox."""
    creds = Credentials(load_pepper(settings), ttl=0.0)
    async with db.transaction() as session:
        ctx = setup_context("tenancy", session, "bootstrap")
        await repo.lock_bootstrap(session)
        async with repo.platform_access(session):
            existing = await repo.find_platform_org(session)
        if existing is not None:
            await repo.switch_org(session, existing.id)
            owner = await repo.find_platform_owner(session, existing.id)
            key = (await issue_key(ctx, creds, existing.id, owner.id, name="bootstrap"))[0] if new_key_if_exists else None
            return Bootstrapped(await load_org(ctx, existing), person_model(owner, [existing.id]), key, False)
        owner_id = uuid7()
        org = await insert_organization(
            ctx,
            OrganizationCreate(name=name, slug=slug, plan=OrgPlan.ENTERPRISE, status=OrgStatus.ACTIVE, settings=SettingsPatch()),
            is_platform=True,
            actor_id=owner_id,
        )
        person_in = PersonIn(email=email or settings.platform_owner_email, display_name="Platform owner")
        owner, created = await ensure_person(ctx, person_in, Role.PLATFORM_OWNER, org.id, owner_id)
        if not created:
            raise Conflict(f"{person_in.email} already belongs to someone; bootstrap with another email")
        await join(ctx, org, owner.id, Role.ORG_OWNER.value, [])
        key, _ = await issue_key(ctx, creds, org.id, owner.id, name="bootstrap")
        return Bootstrapped(await load_org(ctx, org), person_model(owner, [org.id]), key, True)
