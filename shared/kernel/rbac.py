"""Role-based access control: policies, the four built-in roles, and the one decision rule.

A policy allows or denies an action on a resource (`fnmatch` patterns, `*` = any)
at a priority. The decision: among the policies that match, the highest priority
decides; at that priority a deny overrides any allow; nothing matching = deny.
Tenancy evaluates this for its own subjects and `tenancy.rbac.check`; any other
service evaluates the same rule locally from the envelope's auth context
(`require(ctx.auth, "things", "create")`), without a round trip.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from fnmatch import fnmatchcase
from functools import lru_cache
from types import MappingProxyType

from shared.kernel.envelope import AuthContext
from shared.kernel.errors import Forbidden
from shared.kernel.ontology import Role

READ_ACTIONS = frozenset({"read", "list"})
"""Actions that change nothing: all a suspended or cancelled organization may still do."""


class Effect(StrEnum):
    ALLOW = "allow"
    DENY = "deny"


@dataclass(frozen=True, slots=True)
class Policy:
    resource: str
    action: str
    effect: Effect = Effect.ALLOW
    priority: int = 0

    def matches(self, resource: str, action: str) -> bool:
        return fnmatchcase(resource, self.resource) and fnmatchcase(action, self.action)

    def encode(self) -> str:
        """The compact form carried in an envelope's `permissions`: `allow:things:create:0`."""
        return f"{self.effect.value}:{self.resource}:{self.action}:{self.priority}"

    @classmethod
    def decode(cls, text: str) -> "Policy":
        effect, resource, action, priority = text.split(":")
        return cls(resource, action, Effect(effect), int(priority))


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str
    policy: Policy | None = None


def _allow(*pairs: str) -> tuple[Policy, ...]:
    return tuple(Policy(*pair.split(":")) for pair in pairs)


BUILTIN_POLICIES: Mapping[str, tuple[Policy, ...]] = MappingProxyType({
    Role.PLATFORM_OWNER: _allow("*:*"),
    Role.ORG_OWNER: (*_allow("*:*"), Policy("platform", "*", Effect.DENY)),
    Role.ORG_USER: _allow(
        "*:read", "*:list", "things:*", "connections:*", "events:create", "knowledge:*", "agents:*", "jobs:*",
        "keys:create", "keys:revoke", "quotas:consume", "a2a:*",
        "social:create", "social:delete", "meetings:*", "reminders:*",  # social, scheduling (issue #24)
    ) + (Policy("webhook_sources", "*", Effect.DENY),),  # who may sign for the org is its admins' business only
    Role.CUSTOMER: _allow(
        "organization:read", "things:read", "things:list", "connections:create", "connections:read",
        "events:create", "knowledge:read", "keys:read", "keys:list", "keys:create", "keys:revoke", "quotas:consume",
        "agents:run",  # an org's audience chats with its agents (seeds 001, 003), in conversations of their own
        "a2a:send", "a2a:read", "a2a:list",  # ... and its partners' agents talk to them over A2A (issue #19)
        "social:create", "social:delete",  # ... and follows, reacts and comments as itself (issue #24)
    ),
})
"""The four roles every organization has without defining them; orgs may add policies to them."""

BUILTIN_ROLES = frozenset(BUILTIN_POLICIES)


def role_permissions(role: str) -> tuple[str, ...]:
    """A built-in role's policies as an envelope's `permissions` carry them, for a context issued without tenancy
    (the CLI acting for `--org` as a trusted internal client, tests)."""
    return tuple(policy.encode() for policy in BUILTIN_POLICIES[role])


def decide(policies: Iterable[Policy], resource: str, action: str) -> Decision:
    matching = [p for p in policies if p.matches(resource, action)]
    if not matching:
        return Decision(False, f"no policy allows {resource}:{action}")
    top = max(p.priority for p in matching)
    tier = [p for p in matching if p.priority == top]
    deny = next((p for p in tier if p.effect is Effect.DENY), None)
    if deny is not None:
        return Decision(False, f"denied by {deny.encode()}", deny)
    return Decision(True, f"allowed by {tier[0].encode()}", tier[0])


def scope_allows(scopes: Sequence[str], resource: str, action: str) -> bool:
    """An API key's scopes (`resource:action` patterns) narrow what its role allows; none = unrestricted."""
    if not scopes:
        return True
    for scope in scopes:
        scope_resource, _, scope_action = scope.partition(":")
        if fnmatchcase(resource, scope_resource) and fnmatchcase(action, scope_action or "*"):
            return True
    return False


def read_only_scopes(scopes: Sequence[str]) -> tuple[str, ...]:
    """The scopes left when the organization may not write: only read actions survive."""
    narrowed = []
    for scope in scopes or ("*:*",):
        resource, _, action = scope.partition(":")
        action = action or "*"
        narrowed += [f"{resource}:{a}" for a in sorted(READ_ACTIONS) if fnmatchcase(a, action)]
    return tuple(narrowed) or ("none:none",)


EMAIL_VERIFICATION_SCOPE = "email:verify"
"""All a key of a member whose email is unverified may do in an org that requires verification."""


def unverified_scopes(scopes: Sequence[str]) -> tuple[str, ...]:
    """The scopes left while the member's email is unverified: asking for (and confirming) verification."""
    resource, _, action = EMAIL_VERIFICATION_SCOPE.partition(":")
    return (EMAIL_VERIFICATION_SCOPE,) if scope_allows(scopes, resource, action) else ("none:none",)


def check(auth: AuthContext, resource: str, action: str) -> Decision:
    """The decision for a verified auth context, from what the envelope carries."""
    return _decision(tuple(auth.permissions), tuple(auth.scopes), resource, action)


@lru_cache(maxsize=4096)
def _decision(permissions: tuple[str, ...], scopes: tuple[str, ...], resource: str, action: str) -> Decision:
    """Memoised: every request of a role carries the same permissions and asks the same few
    questions, and deciding one from the encoded policies took 6-28 µs (more policies, more)."""
    if not scope_allows(scopes, resource, action):
        return Decision(False, f"the API key's scopes do not include {resource}:{action}")
    try:
        policies = [Policy.decode(p) for p in permissions]
    except ValueError:
        return Decision(False, "the auth context carries a malformed permission")
    return decide(policies, resource, action)


def require(auth: AuthContext, resource: str, action: str) -> None:
    decision = check(auth, resource, action)
    if not decision.allowed:
        raise Forbidden(f"{auth.role or 'actor'} may not {action} {resource}: {decision.reason}",
                        {"resource": resource, "action": action})
