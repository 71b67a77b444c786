"""What a paid request may do in the seller's org, and how each priced resource is served.

A paid URL carries no API key, so nobody's credential stands behind it. Once x402 has settled the
payment, the gateway acts in the **price's** org (found by commerce from the slug, never taken from a
body) as the `x402` service identity (`shared.runtime.context.service_identity`: role `service:x402`, a
stable actor id, and no permission but the grants below). Each kind of resource has its own grants,
the least its one bus request needs (a chat's run writes its conversation and reads knowledge), and
the context is made for that one request and dropped: it cannot list, change or pay for anything else.
Payments go with `PAYMENT_GRANTS` only (record a 402, verify, settle, read the facilitator's kinds).

Before a paid request is charged, `precheck` asks (with the same narrow context) whether the thing sold
is there (the agent, the product and its content), so a payer is not charged for a 404. A pure read
(`forward`: an allow-listed `/v1` read route, one bus message) is its own precheck: it is read first,
held, and sent only once the payment is settled. Its grant is the message's own permission, which must
be a read (`:read`/`:list`): the allow-list sells no write, whatever an org prices.

A paid chat asked as `text/event-stream` is served by `streamed_chat`: the same grants and precheck, and
the run streamed as AG-UI events (`routes_agui.chat_stream`) once the payment is settled.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any
from uuid import UUID

from fastapi import Request
from pydantic import BaseModel

from services.gateway.routes_agui import chat_stream
from shared.contracts.agents import AGENT_GET, CHAT, Run
from shared.contracts.commerce.products import ProductNotFound
from shared.contracts.graph import THING_GET
from shared.contracts.knowledge import SEARCH
from shared.kernel.envelope import AuthContext, MessageSpec
from shared.runtime.context import service_identity

IDENTITY = "x402"
PAYMENT_GRANTS = ("payments:request", "payments:verify", "payments:settle", "payments:read")
RUN_TIMEOUT = 600.0


def payment_auth(org_id: UUID) -> AuthContext:
    return service_identity(IDENTITY, org_id, PAYMENT_GRANTS)


class PaidAnswer(BaseModel):
    """A paid chat's answer: the agent's reply, its run, and the conversation it started."""

    reply: str | None
    run_id: UUID
    thread_id: UUID
    model: str
    run: Run


class ProductContent(BaseModel):
    """A digital product's `properties.content`."""

    id: UUID
    name: str
    content: Any


@dataclass(frozen=True, slots=True)
class Sold:
    """One kind of priced resource: its grants, its check before charging, and its one bus request.

    `serve` answers JSON-able data, or a response of its own (a stream); `read_only` serves before charging
    (and holds the answer); `product_arg` names the argument that is the thing sold (else commerce keeps a
    `product` thing for the URL)."""

    grants: tuple[str, ...]
    serve: Callable[[Any, AuthContext, dict[str, Any]], Awaitable[Any]]
    precheck: Callable[[Any, AuthContext, dict[str, Any]], Awaitable[None]] | None = None
    read_only: bool = False
    product_arg: str | None = None

    def auth(self, org_id: UUID) -> AuthContext:
        return service_identity(IDENTITY, org_id, self.grants)


async def _search(bus: Any, auth: AuthContext, args: dict[str, Any]) -> Any:
    return (await bus.request(SEARCH, args["body"], auth)).model_dump(mode="json")


async def _agent_exists(bus: Any, auth: AuthContext, args: dict[str, Any]) -> None:
    await bus.request(AGENT_GET, {"slug": args["slug"]}, auth)


async def _chat(bus: Any, auth: AuthContext, args: dict[str, Any]) -> Any:
    reply = await bus.request(CHAT, {"slug": args["slug"], **args["body"]}, auth, timeout=RUN_TIMEOUT)
    run = reply.run
    return PaidAnswer(reply=run.answer, run_id=run.id, thread_id=reply.conversation_id, model=run.model,
                      run=run).model_dump(mode="json")


async def _product(bus: Any, auth: AuthContext, args: dict[str, Any]) -> dict[str, Any]:
    thing = (await bus.request(THING_GET, {"id": args["id"]}, auth)).thing
    if thing.type != "digital_product" or thing.properties.get("content") is None:
        raise ProductNotFound(f"no digital product with content {args['id']}", {"id": str(args["id"])})
    return ProductContent(id=thing.id, name=thing.name, content=thing.properties["content"]).model_dump(mode="json")


async def _product_exists(bus: Any, auth: AuthContext, args: dict[str, Any]) -> None:
    await _product(bus, auth, args)


def forward(spec: MessageSpec[Any, Any], product_arg: str | None = None, also: tuple[str, ...] = ()) -> Sold:
    """An allow-listed read route: its one message with `args["payload"]`, answered as the `/v1` route answers;
    `also`: the reads the message makes besides its own (a thing's `include`d connections)."""
    grants = (spec.permission or "", *also)
    if not all(grant.endswith((":read", ":list")) for grant in grants):
        raise ValueError(f"{spec.type} is no read ({grants}): it cannot be sold")

    async def serve(bus: Any, auth: AuthContext, args: dict[str, Any]) -> Any:
        return (await bus.request(spec, args["payload"], auth)).model_dump(mode="json", by_alias=True)

    return Sold(grants, serve, read_only=True, product_arg=product_arg)


async def _chat_stream(request: Request, bus: Any, auth: AuthContext, args: dict[str, Any]) -> Any:
    return await chat_stream(request, bus, auth, {"slug": args["slug"], **args["body"]})


def streamed_chat(request: Request) -> Sold:
    """A paid chat answered as an AG-UI event stream for this request."""
    return replace(AGENT_CHAT, serve=partial(_chat_stream, request))


KNOWLEDGE_SEARCH = Sold(("knowledge:read",), _search)
AGENT_CHAT = Sold(("agents:read", "agents:run", "things:create", "things:read", "knowledge:read", "knowledge:create"),
                  _chat, _agent_exists)
PRODUCT_CONTENT = Sold(("things:read",), _product, _product_exists, product_arg="id")
