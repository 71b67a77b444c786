"""What the edge does around each route's bus request: the key's permission for it, its rate rules, a timeout.

Routes call `request.app.state.bus`, which is an `EdgeBus` around the real client, so the check
is derived from the `MessageSpec` the route actually sends (`spec.permission`, `resource:action`):
there is no second table of route scopes to drift from the contracts. A key whose scopes or role
lack the permission gets 403 before anything leaves the gateway (the service would refuse it the
same way). The first bus request of an HTTP request also counts the org's `operation` rate rules
for its verb (`things.create`, the names `tenancy.rate_limit.hit` takes), and every request
waits at most `gateway_request_timeout` for its reply (then 503 `unavailable`, never a hang).

`EdgeState` is the per-request record the middleware creates (request id, who called, the
tightest rate window) and the auth dependency and this bus fill in; it travels in a context
variable because the route hands the bus only the auth context.
"""

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from services.gateway.limits import Allowance, RateLimiter, Refused
from shared.contracts.tenancy import RateLimitRule
from shared.kernel.envelope import AuthContext, MessageSpec, message_spec
from shared.kernel.rbac import require
from shared.runtime.client import BusClient


@dataclass(slots=True)
class EdgeState:
    """One HTTP request as the edge sees it."""

    request_id: str
    org_id: UUID | None = None
    key_id: str | None = None
    rules: list[RateLimitRule] = field(default_factory=list)
    allowance: Allowance | None = None
    operation_counted: bool = False

    def tighten(self, allowance: Allowance | None) -> None:
        if allowance is not None and (self.allowance is None or allowance.remaining < self.allowance.remaining):
            self.allowance = allowance


current: ContextVar[EdgeState | None] = ContextVar("one_gateway_request", default=None)


def operation_of(spec: MessageSpec[Any, Any]) -> str:
    """The verb of a spec's subject: `one.graph.things.create` -> `things.create`."""
    return spec.subject.split(".", 2)[-1]


class EdgeBus:
    """The bus as the routes see it: `request` checks, counts and bounds; everything else is the client's."""

    def __init__(self, bus: BusClient, limiter: RateLimiter, timeout: float) -> None:
        self.bus = bus
        self.limiter = limiter
        self.timeout = timeout

    async def request(self, message: MessageSpec[Any, Any] | str, payload: Any = None, ctx: AuthContext | None = None,
                      **options: Any) -> Any:
        spec = message_spec(message) if isinstance(message, str) else message
        if ctx is not None:
            if spec.permission is not None:
                resource, _, action = spec.permission.partition(":")
                require(ctx, resource, action)
            state = current.get()
            if state is not None and not state.operation_counted and state.rules:
                state.operation_counted = True
                try:
                    state.tighten(self.limiter.take_operation(ctx.org_id, operation_of(spec), state.rules))
                except Refused as refused:
                    state.allowance = refused.allowance
                    raise
        options.setdefault("timeout", self.timeout)
        return await self.bus.request(spec, payload, ctx, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.bus, name)
