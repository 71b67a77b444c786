"""Packs: install, uninstall and list the bundles an org adds to itself (seed 001's `installedPacks`).

Tenancy orchestrates. An install first has the owners of the other parts make them over the bus
(`service_pack_parts`: type schemas and field masks in the graph, prompts and agents in the agents
service), then creates the pack's roles and policies and records the pack in one transaction: a pack is
recorded only once all of it exists, and a failure halfway leaves parts that the retry finds and keeps.
An uninstall removes what nothing uses and says what stayed and why: a role a member holds (and its
masks), a type schema that live things follow, a prompt another agent uses. The record keeps the pack
as installed and what the install itself created, so an uninstall never removes what the org had before.
"""

from functools import lru_cache
from pathlib import Path
from typing import Any

from services.tenancy import repository as repo, repository_access as access_repo, repository_packs as packs_repo
from services.tenancy.models import role_id
from services.tenancy.repository_packs import PackRow
from services.tenancy.service import Actor, record, require_writable, resolve_actor
from services.tenancy.service_pack_parts import (
    all_of,
    install_field_masks,
    install_prompts_and_agents,
    install_type_schemas,
    remove_agents_and_prompts,
    remove_field_masks,
    remove_type_schemas,
)
from services.tenancy.service_two_factor import require_second_factor
from services.tenancy.state import TenancyState
from shared.contracts.tenancy.packs import (
    AvailablePack,
    InstalledPack,
    PackDocument,
    PackInstall,
    PackInstalled,
    PackItem,
    PackNotFound,
    PackNotInstalled,
    Packs,
    PackUninstall,
    PackUninstalled,
)
from shared.kernel.ids import uuid7
from shared.kernel.ontology import EventType
from shared.runtime.context import WorkContext

PACKS_DIR = Path(__file__).parent / "packs"


@lru_cache(maxsize=1)
def shipped_packs() -> dict[str, PackDocument]:
    """The packs the platform ships (`packs/*.json`), validated once per process."""
    documents = (PackDocument.model_validate_json(path.read_text()) for path in sorted(PACKS_DIR.glob("*.json")))
    return {document.name: document for document in documents}


def _document(payload: PackInstall) -> PackDocument:
    if payload.document is not None:
        return payload.document
    pack = shipped_packs().get(payload.name or "")
    if pack is None:
        raise PackNotFound(f"no pack named {payload.name!r} ships with the platform", {"name": payload.name})
    return pack


async def _admin(ctx: WorkContext, replica: TenancyState, otp: str | None) -> Actor:
    """The caller may manage packs (and so create roles) in its own writable org, second factor included."""
    async with ctx.transaction() as tx:
        actor = await resolve_actor(tx)
        require_writable(await repo.get_org(tx.session, actor.org_id))
        actor.require("packs", "manage")
        await require_second_factor(tx, replica.keys, actor.org_id, actor.person_id, otp)
    return actor


def _installed(row: PackRow) -> InstalledPack:
    pack = PackDocument.model_validate(row.document)
    return InstalledPack(
        name=row.name, version=row.version, title=pack.title, description=pack.description,
        installed_by=row.installed_by, installed_at=row.installed_at, updated_at=row.updated_at,
        thing_types=[t.type for t in pack.thing_types], roles=[r.name for r in pack.roles],
        prompts=[p.name for p in pack.prompts], agents=[a.slug for a in pack.agents],
    )


def _policy_key(policy: Any) -> tuple[str, str, str, int]:
    return policy.resource, policy.action, policy.effect, policy.priority


async def install_pack(ctx: WorkContext, replica: TenancyState, payload: PackInstall) -> PackInstalled:
    pack = _document(payload)
    await _admin(ctx, replica, payload.otp)
    parts = await all_of(install_type_schemas(ctx, pack), install_field_masks(ctx, pack),
                         install_prompts_and_agents(ctx, pack))
    items = [item for part in parts for item in part]
    async with ctx.transaction() as tx:
        row, role_items = await _install_roles_and_record(tx, pack, items)
    replica.invalidate_keys(org_id=ctx.auth.org_id)
    return PackInstalled(pack=_installed(row), items=role_items + items)


async def _install_roles_and_record(
    ctx: WorkContext, pack: PackDocument, parts: list[PackItem]
) -> tuple[PackRow, list[PackItem]]:
    """The pack's roles and their missing policies, and the pack's record, in the caller's transaction."""
    org_id, session = ctx.auth.org_id, ctx.session
    earlier = await packs_repo.get_pack(session, org_id, pack.name, for_update=True)
    owned_roles = list(earlier.owned_roles) if earlier else []
    owned_policies = list(earlier.owned_policies) if earlier else []
    items: list[PackItem] = []
    for role in pack.roles:
        created = not await access_repo.role_exists(session, org_id, role.name)
        if not created:
            items.append(PackItem(kind="role", name=role.name, outcome="existing"))
        else:
            await access_repo.insert_role(session, {"org_id": org_id, "name": role.name, "description": role.description})
            owned_roles.append(role.name)
            items.append(PackItem(kind="role", name=role.name, outcome="created"))
        stored = {_policy_key(p) for p in await access_repo.org_policies(session, org_id, role.name)}
        added = [policy.model_dump() for policy in role.policies if _policy_key(policy) not in stored]
        for policy in added:
            policy_id = uuid7()
            await access_repo.insert_policy(session, {"id": policy_id, "org_id": org_id, "role": role.name, **policy})
            owned_policies.append(policy_id)
            items.append(PackItem(kind="policy", name=f"{role.name}:{policy['effect']}:{policy['resource']}:"
                                                      f"{policy['action']}:{policy['priority']}", outcome="created"))
        if added:
            event = EventType.ENTITY_CREATED if created else EventType.ENTITY_UPDATED
            await record(ctx, event, org_id=org_id, target_id=role_id(org_id, role.name), target_type="role",
                         metadata={"role": role.name, "policies": added, "pack": pack.name})
    document = pack.model_dump(mode="json")
    changed = [i for i in parts + items if i.outcome in ("created", "updated")]
    if earlier is not None and earlier.document == document and not changed:
        return earlier, items
    row = await packs_repo.save_pack(session, {
        "org_id": org_id, "name": pack.name, "version": pack.version, "document": document,
        "owned_roles": owned_roles, "owned_policies": owned_policies, "installed_by": ctx.auth.actor_id,
    })
    await record(ctx, EventType.ORGANIZATION_UPDATED, org_id=org_id, target_id=org_id, target_type="organization",
                 metadata={"changes": {"installedPacks": {"installed": pack.name, "version": pack.version}},
                           "pack": pack.name, "created": [f"{i.kind}:{i.name}" for i in changed]})
    return row, items


async def uninstall_pack(ctx: WorkContext, replica: TenancyState, payload: PackUninstall) -> PackUninstalled:
    await _admin(ctx, replica, payload.otp)
    async with ctx.transaction() as tx:
        row = await packs_repo.get_pack(tx.session, tx.auth.org_id, payload.name)
        if row is None:
            raise PackNotInstalled(f"pack {payload.name!r} is not installed in this organization", {"name": payload.name})
        pack = PackDocument.model_validate(row.document)
        held = {role.name for role in pack.roles if await packs_repo.role_holders(tx.session, tx.auth.org_id, role.name)}
    parts = await all_of(remove_type_schemas(ctx, pack), remove_field_masks(ctx, pack, held),
                         remove_agents_and_prompts(ctx, pack))
    items = [item for part in parts for item in part]
    async with ctx.transaction() as tx:
        items = await _remove_roles_and_record(tx, pack) + items
    replica.invalidate_keys(org_id=ctx.auth.org_id)
    return PackUninstalled(name=pack.name, items=items)


async def _remove_roles_and_record(ctx: WorkContext, pack: PackDocument) -> list[PackItem]:
    """Roles nobody holds go (those the pack created, with all their policies; on a role the org had before, the
    policies the pack added); a role held by a member or an open invitation stays whole. Then the record goes."""
    org_id, session = ctx.auth.org_id, ctx.session
    row = await packs_repo.get_pack(session, org_id, pack.name, for_update=True)
    if row is None:  # a concurrent uninstall finished first
        return []
    items: list[PackItem] = []
    owned_policies = set(row.owned_policies)
    for role in pack.roles:
        holders = await packs_repo.role_holders(session, org_id, role.name)
        if holders:
            items.append(PackItem(kind="role", name=role.name, outcome="kept",
                                  reason=f"held by {holders} member(s) or open invitation(s)"))
        elif role.name in row.owned_roles:
            await packs_repo.delete_role(session, org_id, role.name)
            await record(ctx, EventType.ENTITY_DELETED, org_id=org_id, target_id=role_id(org_id, role.name),
                         target_type="role", metadata={"role": role.name, "pack": pack.name})
            items.append(PackItem(kind="role", name=role.name, outcome="removed"))
        else:
            ours = [p.id for p in await access_repo.org_policies(session, org_id, role.name) if p.id in owned_policies]
            await packs_repo.delete_policies(session, org_id, ours)
            items.append(PackItem(kind="role", name=role.name, outcome="kept",
                                  reason=f"the organization had it before the pack ({len(ours)} pack policies removed)"))
    await packs_repo.delete_pack(session, org_id, pack.name)
    kept = [f"{i.kind}:{i.name}" for i in items if i.outcome == "kept"]
    await record(ctx, EventType.ORGANIZATION_UPDATED, org_id=org_id, target_id=org_id, target_type="organization",
                 metadata={"changes": {"installedPacks": {"uninstalled": pack.name}}, "pack": pack.name, "kept": kept})
    return items


async def list_packs(ctx: WorkContext) -> Packs:
    actor = await resolve_actor(ctx)
    actor.require("packs", "manage")
    rows = await packs_repo.list_packs(ctx.session, actor.org_id)
    available = [AvailablePack(name=p.name, version=p.version, title=p.title, description=p.description)
                 for p in shipped_packs().values()]
    return Packs(installed=[_installed(row) for row in rows], available=available)

