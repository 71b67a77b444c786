"""Who calls an agent's A2A URL: an API key of the agent's org (the card's security schemes), else refused.

The key is read and verified as on every other route (services/gateway/auth.py: `Authorization: Bearer`
or `X-API-Key`, the key cache, the rate windows). No key, or a bad one: 401 with `WWW-Authenticate`
(A2A leaves authentication to HTTP); a key of another org: 403; an org or agent unknown there: 404. The
card alone is public. What the guard found travels to the request handler in the SDK's
`ServerCallContext.state["one"]`.

The URL names the org by its slug (`/a2a/{org slug}/{agent slug}`, what the card says) or by its id: either is
resolved by tenancy's public lookup (`tenancy.organization.resolve_public`: id, slug and name only) and remembered
`ttl` seconds, found or not, so neither the card nor a call costs tenancy a request each (`PublicOrgs`).
"""

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from uuid import UUID

from a2a.server.context import ServerCallContext
from a2a.server.routes import DefaultServerCallContextBuilder
from starlette.requests import Request
from starlette.responses import Response

from services.gateway.auth import api_key_header, authenticated, bearer
from services.gateway.edge import current
from services.gateway.problems import one_error_response
from shared.contracts.a2a import A2A_CARD
from shared.contracts.tenancy import ORG_RESOLVE_PUBLIC, PublicOrg
from shared.kernel.envelope import AuthContext, Protocol
from shared.kernel.errors import Forbidden, InvalidRequest, NotFound, OneError
from shared.runtime.client import BusClient

SCOPE_KEY = "one.a2a"
Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class A2aCall:
    """An authenticated call to one agent's A2A URL."""

    auth: AuthContext
    agent: str
    key_id: str | None


class PublicOrgs:
    """The orgs A2A URLs name, by slug or id, as tenancy's public lookup says, remembered `ttl` seconds."""

    def __init__(self, bus: BusClient, ttl: float = 30.0, size: int = 10_000) -> None:
        self.bus, self.ttl, self.size = bus, ttl, size
        self._known: dict[str, tuple[float, PublicOrg | None]] = {}

    async def resolve(self, ref: str) -> PublicOrg:
        known = self._known.get(ref)
        if known is None or known[0] < time.monotonic():
            try:
                found: PublicOrg | None = await self.bus.request(ORG_RESOLVE_PUBLIC, {"ref": ref})
            except (NotFound, InvalidRequest):
                found = None
            if len(self._known) >= self.size:
                self._known.clear()
            known = self._known[ref] = (time.monotonic() + self.ttl, found)
        if known[1] is None:
            raise NotFound("no such organization")
        return known[1]


async def org_of(request: Request) -> PublicOrg:
    """The org the URL names (`{org}`: its slug or id)."""
    return await request.app.state.a2a_orgs.resolve(request.path_params["org"])


class PublishedAgents:
    """Which agents have an A2A server (active and deployed), asked of the agents service (`a2a.card`) and
    remembered `ttl` seconds, so a call to an unknown agent is a 404 before the SDK parses it."""

    def __init__(self, bus: BusClient, ttl: float = 5.0, size: int = 10_000) -> None:
        self.bus, self.ttl, self.size = bus, ttl, size
        self._known: dict[tuple[UUID, str], tuple[float, bool]] = {}

    async def check(self, org_id: UUID, agent: str) -> None:
        known = self._known.get((org_id, agent))
        if known is None or known[0] < time.monotonic():
            try:
                await self.bus.request(A2A_CARD, {"org_id": str(org_id), "agent": agent}, protocol=Protocol.A2A)
                found = True
            except NotFound:
                found = False
            if len(self._known) >= self.size:
                self._known.clear()
            known = self._known[(org_id, agent)] = (time.monotonic() + self.ttl, found)
        if not known[1]:
            raise NotFound(f"no published agent {agent} here")


def guarded(endpoint: Endpoint, published: PublishedAgents) -> Endpoint:
    """The endpoint behind the key check: the key's org must be the URL's, and the agent published."""

    async def guard(request: Request) -> Response:
        try:
            auth = await authenticated(request, await bearer(request), await api_key_header(request))
            if (await org_of(request)).id != auth.org_id:
                raise Forbidden("this API key's organization does not own this agent")
            await published.check(auth.org_id, request.path_params["agent"])
        except OneError as error:
            return one_error_response(request, error)
        state = current.get()
        request.scope[SCOPE_KEY] = A2aCall(auth, request.path_params["agent"], state.key_id if state else None)
        return await endpoint(request)

    return guard


class CallContextBuilder(DefaultServerCallContextBuilder):
    """The SDK's call context, carrying the guard's `A2aCall`."""

    def build(self, request: Request) -> ServerCallContext:
        context = super().build(request)
        context.state["one"] = request.scope[SCOPE_KEY]
        return context


def call_of(context: ServerCallContext | None) -> A2aCall:
    call = context.state.get("one") if context is not None else None
    if not isinstance(call, A2aCall):  # only a route behind `guarded` reaches the handler
        raise RuntimeError("an A2A call without its guard")
    return call
