"""What a caller's role may see of the graph: its field masks and scope rules, cached per replica with the org's
thing-type schemas (the other rules an org sets on its graph, read by every create and update).

Every read path asks `view_of(ctx)` once: `None` when no rule names the caller's role (the common
case: a dict lookup, no SQL), else an `AccessView` that masks things (`mask`), says which property
paths may not be filtered on (`hidden`), and gives the scope as SQL for the read's own statement
(`scope`, see repository_access.py), so out-of-scope things are filtered in the database.

System work (`service:<name>` roles) and a context without a role are never restricted; rules name
roles, so owners are unaffected unless a rule names them.

The cache: an org's rules are loaded once per replica (in the reading transaction) and kept until a
change (`change`: a mask, scope rule or type schema written). A change drops the org's entry here
after its commit and broadcasts the org on core NATS (`ACCESS_CHANGED`), so every replica drops it
too; a generation counter keeps a load that raced an invalidation from being stored, and a TTL
bounds what a lost broadcast could leave stale.
"""

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID
from weakref import WeakKeyDictionary

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError

from services.graph import repository_access as repo, repository_type_schemas
from services.graph.repository_access import ScopeSql
from services.graph.repository_type_schemas import TypeSchemaRow
from shared.contracts.graph import Thing, ThingNotFound
from shared.kernel import subjects
from shared.kernel.errors import Forbidden
from shared.runtime.context import WorkContext
from shared.runtime.service import ServiceRuntime

log = logging.getLogger(__name__)

ACCESS_CHANGED = subjects.command("graph", "access.changed")
"""Core NATS, no queue group: every graph replica hears which org's rules changed."""
_TTL = 30.0
_MAX_ORGS = 10_000
T = TypeVar("T")
_RESTRICTIVENESS = {"allow": 0, "mask": 1, "redact": 2}
MASKED = "***"


@dataclass(frozen=True, slots=True)
class MaskRule:
    thing_type: str
    pattern: tuple[str, ...]
    """The field's segments after `properties`; a `*` segment matches any one key."""
    mode: str
    priority: int


@dataclass(frozen=True, slots=True)
class ScopeRule:
    thing_type: str
    rule: str
    connection_type: str | None
    effect: str


def _matches(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    return len(pattern) == len(path) and all(p in ("*", k) for p, k in zip(pattern, path, strict=True))


def _under(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    """Whether the pattern names something strictly below `path`."""
    return len(pattern) > len(path) and _matches(pattern[: len(path)], path)


def decide(masks: tuple[MaskRule, ...], path: tuple[str, ...]) -> str | None:
    """The mode for exactly this path: the highest priority decides, the most restrictive wins a tie."""
    matching = [m for m in masks if _matches(m.pattern, path)]
    if not matching:
        return None
    top = max(m.priority for m in matching)
    mode = max((m.mode for m in matching if m.priority == top), key=_RESTRICTIVENESS.__getitem__)
    return None if mode == "allow" else mode


@dataclass
class RoleRules:
    """One role's rules in one org, with the masks per thing type worked out once."""

    masks: tuple[MaskRule, ...]
    scopes: tuple[ScopeRule, ...]
    _by_type: dict[str, tuple[MaskRule, ...]] = field(default_factory=dict)

    def masks_for(self, thing_type: str) -> tuple[MaskRule, ...]:
        found = self._by_type.get(thing_type)
        if found is None:
            found = self._by_type[thing_type] = tuple(m for m in self.masks if m.thing_type in ("*", thing_type))
        return found


def _masked(properties: dict[str, Any], masks: tuple[MaskRule, ...], prefix: tuple[str, ...]) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    for key, value in properties.items():
        path = (*prefix, key)
        mode = decide(masks, path)
        if mode == "redact":
            continue
        if mode == "mask":
            shown[key] = MASKED
        elif isinstance(value, dict) and any(_under(m.pattern, path) for m in masks):
            shown[key] = _masked(value, masks, path)
        else:
            shown[key] = value
    return shown


@dataclass(frozen=True)
class AccessView:
    """The rules of the caller's role, applied for one request."""

    rules: RoleRules
    actor_id: UUID

    def mask(self, thing: Thing) -> Thing:
        masks = self.rules.masks_for(thing.type.value)
        if not masks:
            return thing
        return thing.model_copy(update={"properties": _masked(thing.properties, masks, ())})

    def hidden(self, thing_type: str | None, path: tuple[str, ...]) -> bool:
        """Whether a property path (segments after `properties`) is masked or redacted, at it, above it or
        below it, for the type (any type the rules name when None): a filter on it would reveal it."""
        types = [thing_type] if thing_type else sorted({m.thing_type for m in self.rules.masks})
        for type_ in types:
            masks = self.rules.masks_for(type_)
            if any(decide(masks, path[:n]) for n in range(1, len(path) + 1)):
                return True
            if any(_under(m.pattern, path) and m.mode != "allow" for m in masks):
                return True
        return False

    def scope(self, alias: str) -> ScopeSql | None:
        return repo.scope_condition(self.rules.scopes, self.actor_id, alias)


@dataclass(frozen=True)
class OrgRules:
    roles: dict[str, RoleRules]
    type_schemas: dict[str, TypeSchemaRow]


def _org_rules(mask_rows: list[Any], scope_rows: list[Any], schema_rows: list[TypeSchemaRow]) -> OrgRules:
    masks: dict[str, list[MaskRule]] = {}
    scopes: dict[str, list[ScopeRule]] = {}
    for r in mask_rows:
        masks.setdefault(r.role, []).append(MaskRule(r.thing_type, tuple(r.field.split(".")[1:]), r.mode, r.priority))
    for r in scope_rows:
        scopes.setdefault(r.role, []).append(ScopeRule(r.thing_type, r.rule, r.connection_type, r.effect))
    return OrgRules({role: RoleRules(tuple(masks.get(role, ())), tuple(scopes.get(role, ())))
                     for role in masks.keys() | scopes.keys()}, {row.thing_type: row for row in schema_rows})


class AccessCache:
    """One replica's cached rules per org, and its side of the invalidation broadcast."""

    def __init__(self) -> None:
        self._orgs: dict[UUID, tuple[OrgRules, float]] = {}
        self._generation: dict[UUID, int] = {}
        self._nc: NatsClient | None = None
        self._subscription: Subscription | None = None

    async def rules(self, ctx: WorkContext, org_id: UUID) -> OrgRules:
        cached = self._orgs.get(org_id)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        generation = self._generation.get(org_id, 0)
        loaded = _org_rules(*await repo.load_rules(ctx.session, org_id),
                            await repository_type_schemas.list_all(ctx.session, org_id))
        if self._generation.get(org_id, 0) == generation:  # no change was announced while loading
            if len(self._orgs) >= _MAX_ORGS:
                self._orgs.clear()
            self._orgs[org_id] = (loaded, time.monotonic() + _TTL)
        return loaded

    def holds(self, org_id: UUID) -> bool:
        """Whether the org's rules are cached here (and still fresh)."""
        cached = self._orgs.get(org_id)
        return cached is not None and cached[1] > time.monotonic()

    def drop(self, org_id: UUID) -> None:
        self._generation[org_id] = self._generation.get(org_id, 0) + 1
        self._orgs.pop(org_id, None)

    async def changed(self, org_id: UUID) -> None:
        """After a change committed: drop the org here, then tell every replica (awaited, so a caller that
        reads next through another replica finds it told)."""
        self.drop(org_id)
        if self._nc is None:
            return
        try:
            await self._nc.publish(ACCESS_CHANGED, json.dumps({"org_id": str(org_id)}).encode())
            await self._nc.flush()
        except (NatsError, TimeoutError) as error:  # committed already: the TTL bounds what others keep
            log.warning("graph: the access-rules invalidation of org %s was not sent: %r", org_id, error)

    async def listen(self, nc: NatsClient) -> None:
        self._nc = nc
        self._subscription = await nc.subscribe(ACCESS_CHANGED, cb=self._on_changed)

    async def close(self) -> None:
        if self._subscription is not None:
            await self._subscription.unsubscribe()
            self._subscription = None

    async def _on_changed(self, msg: Msg) -> None:
        try:
            self.drop(UUID(json.loads(msg.data)["org_id"]))
        except (ValueError, TypeError, KeyError) as error:
            log.warning("graph: ignored a malformed access-rules invalidation: %r", error)


_CACHES: "WeakKeyDictionary[ServiceRuntime, AccessCache]" = WeakKeyDictionary()


def cache_of(runtime: ServiceRuntime) -> AccessCache:
    """This replica's cache (two replicas in one process, as in tests, keep their own)."""
    cache = _CACHES.get(runtime)
    if cache is None:
        cache = _CACHES[runtime] = AccessCache()
    return cache


async def change(ctx: WorkContext, work: Callable[[WorkContext], Awaitable[T]]) -> T:
    """Change the org's rules in a transaction of its own, then drop them here and on every replica."""
    async with ctx.transaction() as tx:
        result = await work(tx)
    await cache_of(ctx.runtime).changed(ctx.auth.org_id)
    return result


async def start(runtime: ServiceRuntime) -> None:
    await cache_of(runtime).listen(runtime.broker.connection)


async def stop(runtime: ServiceRuntime) -> None:
    await cache_of(runtime).close()


async def view_of(ctx: WorkContext) -> AccessView | None:
    """The caller's view, or None when no rule restricts its role (system work never is)."""
    auth = ctx.auth
    if not auth.role or auth.role.startswith("service:"):
        return None
    rules = (await cache_of(ctx.runtime).rules(ctx, auth.org_id)).roles.get(auth.role)
    return None if rules is None else AccessView(rules, auth.actor_id)


async def view_before_reading(ctx: WorkContext) -> AccessView | None:
    """`view_of` for a request that has not begun a transaction: the rules are read in one of their own when this
    replica does not hold them (so a read that needs no transaction needs none while they stay cached)."""
    auth = ctx.auth
    if not auth.role or auth.role.startswith("service:") or cache_of(ctx.runtime).holds(auth.org_id):
        return await view_of(ctx)
    async with ctx.transaction() as tx:
        return await view_of(tx)


async def visible_thing(ctx: WorkContext, thing: Thing) -> Thing:
    """The thing as the caller may see it; `ThingNotFound` (as for a missing one) when out of its scope."""
    view = await view_of(ctx)
    if view is None:
        return thing
    scope = view.scope("t")
    if scope is not None and not await repo.visible_types(ctx.session, ctx.auth.org_id, [thing.id], scope):
        raise ThingNotFound(f"no thing {thing.id} in this organization", {"id": str(thing.id)})
    return view.mask(thing)


async def masked(ctx: WorkContext, thing: Thing) -> Thing:
    """The thing with the caller's masks applied (a write's reply: scope was checked before the write)."""
    view = await view_of(ctx)
    return thing if view is None else view.mask(thing)


async def keep_masked(ctx: WorkContext, thing_type: str, patch: dict[str, Any]) -> dict[str, Any]:
    """An update's properties less the masked ones sent back as read (`"***"`): the stored values stay."""
    view = await view_of(ctx)
    if view is None:
        return patch
    masks = view.rules.masks_for(thing_type)
    return {k: v for k, v in patch.items() if not (v == MASKED and decide(masks, (k,)) == "mask")}


def mask_all(view: AccessView | None, things: list[Thing]) -> list[Thing]:
    return things if view is None else [view.mask(t) for t in things]



def check_filters(view: AccessView, thing_type: str | None, paths: list[str]) -> None:
    """A query may not filter on what the caller's masks hide: the answer would reveal the value."""
    for path in paths:
        if view.hidden(thing_type, tuple(path.split("."))):
            raise Forbidden(f"properties.{path} is masked for your role: it cannot be filtered on", {"path": path})
