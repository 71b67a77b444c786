"""`one orgs|members|invites|roles|policies|keys|quotas|rate-limits ...`: what tenancy offers, from a terminal.

Every command acts as a verified key through the SDK. `--org` names another organization where tenancy
allows it: a platform owner's key only (tenancy refuses anyone else and logs the access). `--otp` carries
a current two-factor code where the organization requires one for the change.
"""

from datetime import datetime
from typing import Any
from uuid import UUID

import typer

from shared.tools.cli_output import (
    Column,
    act,
    anonymous_request,
    fail,
    json_object,
    print_json,
    print_record,
    print_reply,
    print_table,
)
from shared.tools.cli_sealing import rotate as rotate_sealing_keys

orgs_app = typer.Typer(help="Organizations: list, get, create (platform owner), update.", no_args_is_help=True)
members_app = typer.Typer(help="Members of the organization: list, change role, remove.", no_args_is_help=True)
invites_app = typer.Typer(help="Invitations: create, list pending, accept.", no_args_is_help=True)
roles_app = typer.Typer(help="Roles and their policies: list, create.", no_args_is_help=True)
policies_app = typer.Typer(help="Policies of custom roles: list, add, remove.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys: list, create, revoke; `rotate`: the keys sealing secrets at rest.",
                       no_args_is_help=True)
keys_app.command("rotate")(rotate_sealing_keys)
quotas_app = typer.Typer(help="Quotas: usage and limits.", no_args_is_help=True)
rate_limits_app = typer.Typer(help="Rate-limit rules: list, set.", no_args_is_help=True)

JsonOption = typer.Option(False, "--json", help="The reply as JSON (the contract's model).")
OrgOption = typer.Option(None, "--org", help="Another organization (platform owners only); default: the key's.")
OtpOption = typer.Option(None, "--otp", help="A current two-factor code, where the org requires one.")


def _fields(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else ""


def _out(result: Any, as_json: bool, record: dict[str, Any]) -> None:
    print_json(result) if as_json else print_record(record)


# --- orgs -------------------------------------------------------------------


def _org_record(org: Any) -> dict[str, Any]:
    return {"id": str(org.id), "name": org.name, "slug": org.slug, "domain": org.domain, "status": org.status,
            "plan": org.plan, "platform": "yes" if org.is_platform else "no", "settings": org.settings,
            "limits": org.limits, "usage": org.usage, "trial_ends_at": _when(org.trial_ends_at)}


@orgs_app.command("list")
def orgs_list(limit: int = typer.Option(100, min=1, max=1000), offset: int = typer.Option(0, min=0),
              as_json: bool = JsonOption) -> None:
    """The organizations the key may see (every one, for a platform owner)."""
    page = act(lambda one: one.orgs.list(limit=limit, offset=offset))
    print_reply(page, as_json,
                [Column("id", "id"), Column("slug"), Column("plan"), Column("status"), Column("name", "text")],
                [(o.id, o.slug, o.plan, o.status, o.name) for o in page.organizations], empty="no organizations")


@orgs_app.command("get")
def orgs_get(org: UUID = typer.Argument(None, help="Default: the key's own organization."),
             as_json: bool = JsonOption) -> None:
    """One organization: settings, limits and usage."""
    found = act(lambda one: one.orgs.get(org))
    _out(found, as_json, _org_record(found))


@orgs_app.command("create")
def orgs_create(
    name: str, slug: str,
    domain: str = typer.Option(None), plan: str = typer.Option(None, help="starter, pro or enterprise."),
    owner_email: str = typer.Option(None, "--owner-email", help="Create (or find) this person as the org's owner."),
    owner_name: str = typer.Option("Owner", "--owner-name"),
    as_json: bool = JsonOption,
) -> None:
    """Create an organization (platform owners); with --owner-email its first owner and their key, shown once."""
    owner = {"email": owner_email, "display_name": owner_name} if owner_email else None
    created = act(lambda one: one.orgs.create(name, slug, **_fields(domain=domain, plan=plan, owner=owner)))
    record = _org_record(created.organization)
    if created.owner:
        record |= {"owner": f"{created.owner.email} ({created.owner.id})", "owner key": created.owner_key or ""}
    _out(created, as_json, record)


@orgs_app.command("update")
def orgs_update(
    org: UUID = OrgOption,
    name: str = typer.Option(None), domain: str = typer.Option(None),
    settings: str = typer.Option(None, help='Settings to change, as JSON: {"allow_signups": true, ...}.'),
    plan: str = typer.Option(None, help="Platform owners only."),
    status: str = typer.Option(None, help="Platform owners only."),
    otp: str = OtpOption, as_json: bool = JsonOption,
) -> None:
    """Change an organization's name, domain, settings (or, as a platform owner, plan and status)."""
    changes = _fields(name=name, domain=domain, plan=plan, status=status, otp=otp,
                      settings=json_object(settings, "--settings") if settings else None)
    if not changes.keys() - {"otp"}:
        fail("nothing to change", "give --name, --domain, --settings, --plan or --status", 2)
    updated = act(lambda one: one.orgs.update(org, **changes))
    _out(updated, as_json, _org_record(updated))


# --- members and invites ------------------------------------------------------


@members_app.command("list")
def members_list(org: UUID = OrgOption, as_json: bool = JsonOption) -> None:
    """The organization's members and their roles."""
    found = act(lambda one: one.members.list(org))
    print_reply(found, as_json,
                [Column("person", "id"), Column("role"), Column("email")],
                [(m.person_id, m.role, m.email) for m in found.members], empty="no members")


@members_app.command("role")
def members_role(person: UUID, role: str,
                 permissions: list[str] = typer.Option(None, "--permission", help="Extra resource:action grants."),
                 org: UUID = OrgOption, otp: str = OtpOption, as_json: bool = JsonOption) -> None:
    """Give a member another role (and, optionally, extra permissions)."""
    changed = act(lambda one: one.members.change_role(person, role, org_id=org,
                                                      **_fields(permissions=permissions or None, otp=otp)))
    _out(changed, as_json, {"person": str(changed.person_id), "org": str(changed.org_id), "role": changed.role,
                            "permissions": ", ".join(changed.permissions)})


@members_app.command("remove")
def members_remove(person: UUID, org: UUID = OrgOption, otp: str = OtpOption, as_json: bool = JsonOption) -> None:
    """Remove a member; their keys for this organization are revoked."""
    removed = act(lambda one: one.members.remove(person, org_id=org, **_fields(otp=otp)))
    _out(removed, as_json, {"removed": str(removed.person_id), "org": str(removed.org_id),
                            "revoked keys": ", ".join(removed.revoked_keys) or "none"})


@invites_app.command("create")
def invites_create(email: str, role: str = typer.Option("org_user"),
                   permissions: list[str] = typer.Option(None, "--permission", help="Extra resource:action grants."),
                   org: UUID = OrgOption, as_json: bool = JsonOption) -> None:
    """Invite someone by email: a new address gets a token to hand over; an existing account is mailed it."""
    issued = act(lambda one: one.members.invite(email, role=role, permissions=permissions or None, org_id=org))
    record = {"invite": str(issued.invite.id), "email": issued.invite.email, "role": issued.invite.role,
              "expires_at": _when(issued.invite.expires_at), "delivery": issued.delivery}
    if issued.token:
        record["token"] = f"{issued.token}  (shown once: `one invites accept <token>` redeems it)"
    _out(issued, as_json, record)


@invites_app.command("list")
def invites_list(org: UUID = OrgOption, as_json: bool = JsonOption) -> None:
    """Invitations not accepted yet."""
    pending = act(lambda one: one.members.list(org)).pending_invites
    print_reply(pending, as_json,
                [Column("invite", "id"), Column("role"), Column("expires"), Column("email")],
                [(i.id, i.role, _when(i.expires_at)[:10], i.email) for i in pending], empty="no pending invitations")


@invites_app.command("accept")
def invites_accept(token: str, display_name: str = typer.Option(None, "--display-name"),
                   username: str = typer.Option(None), as_json: bool = JsonOption) -> None:
    """Join an organization with an invitation's token (no key needed: the token is the proof); prints your key."""
    from shared.contracts.tenancy import MEMBER_ACCEPT

    joined = anonymous_request(MEMBER_ACCEPT, _fields(token=token, display_name=display_name, username=username))
    _out(joined, as_json, {"org": f"{joined.organization.name} ({joined.organization.id})",
                           "person": str(joined.person.id), "role": joined.membership.role,
                           "api key": f"{joined.api_key}  (shown once: use it as ONE_API_KEY)"})


# --- roles and policies ---------------------------------------------------------


def _policy_rows(roles: list[Any], only: str | None = None) -> list[tuple]:
    return [(p.id or "", r.name, p.resource, p.action, p.effect, p.priority)
            for r in roles if only in (None, r.name) for p in r.policies]


POLICY_COLUMNS = [Column("id", "id"), Column("role"), Column("resource"), Column("action"), Column("effect"),
                  Column("priority")]


@roles_app.command("list")
def roles_list(as_json: bool = JsonOption) -> None:
    """Built-in and custom roles, with how many policies each has."""
    found = act(lambda one: one.roles.list())
    print_reply(found, as_json,
                [Column("role"), Column("builtin"), Column("policies"), Column("description", "text")],
                [(r.name, "yes" if r.builtin else "no", len(r.policies), r.description) for r in found.roles])


@roles_app.command("create")
def roles_create(
    name: str, description: str = typer.Option(""),
    policies: list[str] = typer.Option(None, "--policy", help="resource:action[:allow|deny] (repeatable)."),
    otp: str = OtpOption, as_json: bool = JsonOption,
) -> None:
    """Create a custom role with its policies."""
    parsed = [_policy(p) for p in policies or []]
    role = act(lambda one: one.roles.create(name, **_fields(description=description, policies=parsed, otp=otp)))
    if as_json:
        print_json(role)
        return
    print_record({"role": role.name, "id": str(role.id), "description": role.description})
    print_table(POLICY_COLUMNS, _policy_rows([role]))


def _policy(text: str) -> dict[str, Any]:
    resource, _, rest = text.partition(":")
    action, _, effect = rest.partition(":")
    if not resource or not action or effect not in ("", "allow", "deny"):
        fail(f"--policy {text!r}: expected resource:action or resource:action:allow|deny",
             "e.g. --policy things:read", 2)
    return {"resource": resource, "action": action, "effect": effect or "allow"}


@policies_app.command("list")
def policies_list(role: str = typer.Option(None, help="Only this role's."), as_json: bool = JsonOption) -> None:
    """Every role's policies (built-in ones have no id: they cannot be removed)."""
    roles = act(lambda one: one.roles.list()).roles
    if as_json:
        print_json([p for r in roles if role in (None, r.name) for p in r.policies])
        return
    print_table(POLICY_COLUMNS, _policy_rows(roles, role), empty="no policies")


@policies_app.command("add")
def policies_add(role: str, resource: str, action: str, deny: bool = typer.Option(False, "--deny"),
                 priority: int = typer.Option(0, min=-1000, max=1000), otp: str = OtpOption,
                 as_json: bool = JsonOption) -> None:
    """Add a policy to a custom role: allow (or --deny) `action` on `resource` (patterns: things, *, read, ...)."""
    added = act(lambda one: one.roles.add_policy(role, resource, action, effect="deny" if deny else "allow",
                                                 priority=priority, **_fields(otp=otp)))
    print_reply(added, as_json,
                POLICY_COLUMNS, [(added.id, added.role, added.resource, added.action, added.effect, added.priority)])


@policies_app.command("remove")
def policies_remove(policy: UUID, otp: str = OtpOption, as_json: bool = JsonOption) -> None:
    """Remove a custom role's policy by its id (`one policies list`)."""
    removed = act(lambda one: one.roles.remove_policy(policy, **_fields(otp=otp)))
    print_json(removed) if as_json else print(f"removed policy {removed.policy_id}")


# --- keys ---------------------------------------------------------------------


@keys_app.command("list")
def keys_list(everyone: bool = typer.Option(False, "--all", help="Every member's keys (needs keys:manage)."),
              as_json: bool = JsonOption) -> None:
    """API keys (never their secrets): yours, or with --all the organization's."""
    found = act(lambda one: one.keys.list(everyone=everyone or None))
    print_reply(found, as_json,
                [Column("key_id"), Column("state"), Column("last used"), Column("person", "id"),
                 Column("name", "text")],
                [(k.key_id, "revoked" if k.revoked_at else "active", _when(k.last_used_at)[:10],
                  k.person_id if everyone else "", k.name) for k in found.keys], empty="no keys")


@keys_app.command("create")
def keys_create(name: str = typer.Argument("default"),
                scopes: list[str] = typer.Option(None, "--scope", help="resource:action patterns (repeatable)."),
                expires_at: datetime = typer.Option(None, "--expires-at"), otp: str = OtpOption,
                as_json: bool = JsonOption) -> None:
    """A new API key for you; its secret is printed once."""
    issued = act(lambda one: one.keys.create(name, scopes=scopes or None, expires_at=expires_at, **_fields(otp=otp)))
    _out(issued, as_json, {"key_id": issued.info.key_id, "name": issued.info.name,
                           "scopes": ", ".join(issued.info.scopes) or "(the role's)",
                           "expires_at": _when(issued.info.expires_at) or "never",
                           "key": f"{issued.key}  (shown once)"})


@keys_app.command("revoke")
def keys_revoke(key_id: str, as_json: bool = JsonOption) -> None:
    """Revoke a key by its id (`one keys list`): it stops working at once."""
    revoked = act(lambda one: one.keys.revoke(key_id))
    print_json(revoked) if as_json else print(f"revoked key {revoked.key_id} at {_when(revoked.revoked_at)}")


# --- quotas and rate limits -------------------------------------------------------


@quotas_app.command("list")
def quotas_list(org: UUID = OrgOption, as_json: bool = JsonOption) -> None:
    """Each metered quota: limit, used, and whether it resets monthly."""
    found = act(lambda one: one.quotas.usage(org))
    print_reply(found, as_json,
                [Column("metric"), Column("used"), Column("limit"), Column("monthly"), Column("period start")],
                [(q.metric, q.used, q.limit, "yes" if q.resets_monthly else "no", _when(q.period_start)[:10])
                 for q in found.quotas], empty="no quotas")


@quotas_app.command("set")
def quotas_set(metric: str, limit: int = typer.Argument(..., min=0),
               monthly: bool = typer.Option(False, "--monthly", help="Reset the usage every month."),
               org: UUID = OrgOption, as_json: bool = JsonOption) -> None:
    """Set a quota's limit (platform owners, for any org)."""
    quota = act(lambda one: one.quotas.set(metric, limit, org_id=org, resets_monthly=monthly))
    _out(quota, as_json, {"metric": quota.metric, "limit": str(quota.limit), "used": str(quota.used),
                          "monthly": "yes" if quota.resets_monthly else "no"})


@rate_limits_app.command("list")
def rate_limits_list(as_json: bool = JsonOption) -> None:
    """The organization's rate-limit rules."""
    found = act(lambda one: one.quotas.rate_limits())
    print_reply(found, as_json,
                [Column("scope"), Column("operation"), Column("max calls"), Column("window s")],
                [(r.scope, r.operation, r.max_calls, r.window_seconds) for r in found.rules], empty="no rules")


@rate_limits_app.command("set")
def rate_limits_set(scope: str = typer.Argument(..., help="org, key or operation."),
                    max_calls: int = typer.Argument(..., min=1), window_seconds: int = typer.Argument(..., min=1),
                    operation: str = typer.Option("*", help="The operation pattern (scope operation)."),
                    org: UUID = OrgOption, as_json: bool = JsonOption) -> None:
    """Allow at most MAX_CALLS per WINDOW_SECONDS for the org, each key, or an operation."""
    rule = act(lambda one: one.quotas.set_rate_limit(scope, max_calls, window_seconds, org_id=org, operation=operation))
    _out(rule, as_json, {"scope": rule.scope, "operation": rule.operation, "max calls": str(rule.max_calls),
                         "window": f"{rule.window_seconds}s"})
