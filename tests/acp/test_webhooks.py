"""Webhooks to the agent platform: signed order events delivered to a real local HTTP receiver, retried with backoff.

The receiver is a Starlette app on a loopback port that checks `Merchant-Signature` with the helper a
platform would use (`verify_signature`) and can be told to fail first; the order events come from real
checkouts completed over the gateway.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.commerce import webhooks
from services.gateway.server import serve
from shared.contracts.commerce.webhooks import (
    WEBHOOK_DELIVERIES,
    WEBHOOK_GET,
    WEBHOOK_SET,
    InvalidSignature,
    sign,
    verify_signature,
)
from shared.kernel.errors import NotFound
from shared.runtime.client import BusClient
from shared.runtime.service import ServiceRuntime
from tests.acp.conftest import Merchant, card, create_body, eventually, validate
from tests.acp.test_delegate_payment import delegate, delegation
from tests.cli.conftest import Cli, one, one_line_error  # noqa: F401 (fixtures)
from tests.tenancy.conftest import owner  # noqa: F401 (fixtures)

SECRET = "whsec_test_" + "s" * 24


@dataclass
class Receiver:
    """An agent platform's webhook endpoint: answers `fail_first` requests with 503, then accepts signed ones."""

    url: str = ""
    secret: str = SECRET
    fail_first: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    calls: int = 0

    async def order_events(self, request: Request) -> JSONResponse:
        self.calls += 1
        body = await request.body()
        if self.calls <= self.fail_first:
            return JSONResponse({"type": "service_unavailable", "code": "busy", "message": "try later"}, 503)
        try:
            verify_signature(self.secret, request.headers.get("Merchant-Signature"), body)
        except InvalidSignature as refused:
            self.refused.append(refused.message)
            return JSONResponse({"type": "invalid_request", "code": "invalid_signature", "message": refused.message},
                                401)
        self.received.append({"body": json.loads(body), "headers": dict(request.headers)})
        return JSONResponse({"received": True, "request_id": request.headers.get("Request-Id", "")})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = Starlette(routes=[Route("/agentic_checkout/webhooks/order_events", found.order_events, methods=["POST"])])
    state = await serve(app, "127.0.0.1", 0)
    found.url = f"{state.url}/agentic_checkout/webhooks/order_events"
    yield found
    state.server.should_exit = True
    await state.task


async def buy(merchant: Merchant) -> dict[str, Any]:
    """A completed checkout of one digital product (no address needed), paid with a delegated token."""
    ebook = await merchant.product("E-book", 1000, tax_category="digital")
    session = await merchant.create(create_body(ebook, buyer={"email": "reader@example.com"}))
    token = await delegate(merchant.caller, delegation(session["id"], max_amount=1000))
    return await merchant.complete(session["id"], {"payment_data": card(token)})


async def deliveries(merchant: Merchant, **query: Any) -> list[Any]:
    return (await merchant.bus.request(WEBHOOK_DELIVERIES, query, merchant.caller.account.ctx)).items


def test_a_signature_verifies_only_for_its_body_secret_and_time() -> None:
    body = b'{"type":"order_create","data":{}}'
    header = sign(SECRET, body, timestamp=1_700_000_000)
    assert verify_signature(SECRET, header, body, now=1_700_000_100) == 1_700_000_000
    for args, now in [((SECRET, header, body + b" "), 1_700_000_000), (("another-secret-123", header, body), 1_700_000_000),
                      ((SECRET, header, body), 1_700_000_301), ((SECRET, None, body), 1_700_000_000),
                      ((SECRET, "t=1,v1=abc", body), 1), ((SECRET, header.replace("v1=", "v0="), body), 1_700_000_000)]:
        with pytest.raises(InvalidSignature):
            verify_signature(*args, now=now)


async def test_an_order_is_announced_signed_to_the_platform(merchant: Merchant, receiver: Receiver) -> None:
    endpoint = await merchant.bus.request(WEBHOOK_SET, {"url": receiver.url, "secret": SECRET},
                                          merchant.caller.account.ctx)
    assert endpoint.secret is None and endpoint.secret_hint == SECRET[-4:]
    done = await buy(merchant)
    [event] = (await eventually(lambda: asyncio.sleep(0, receiver.received)))
    body = event["body"]
    assert body["type"] == "order_create" and body["data"]["id"] == done["order"]["id"]
    validate("Order", body["data"])
    assert {"type", "checkout_session_id", "permalink_url", "status"} <= set(body["data"])
    assert event["headers"]["content-type"] == "application/json" and receiver.refused == []
    [delivery] = await eventually(lambda: deliveries(merchant, state="delivered"))
    assert delivery.order_id == done["order"]["id"] and [a.status for a in delivery.attempts] == [200]


async def test_a_failing_receiver_is_retried_with_backoff(merchant: Merchant, receiver: Receiver,
                                                          services: dict[str, ServiceRuntime]) -> None:
    receiver.fail_first = 2
    await merchant.bus.request(WEBHOOK_SET, {"url": receiver.url, "secret": SECRET}, merchant.caller.account.ctx)
    await buy(merchant)
    [delivery] = await eventually(lambda: deliveries(merchant, state="delivered"), timeout=60)
    assert [a.status for a in delivery.attempts] == [503, 503, 200]
    assert [a.attempt for a in delivery.attempts] == [1, 2, 3]
    base = services["commerce"].settings.commerce_webhook_backoff_base
    first, second, third = (a.started_at for a in delivery.attempts)
    assert (second - first).total_seconds() >= base * 0.5  # jittered 50-100 % of base, then 2 x base
    assert (third - second).total_seconds() >= base
    assert len(receiver.received) == 1


async def test_a_delivery_whose_attempts_run_out_is_dead(merchant: Merchant, receiver: Receiver,
                                                         services: dict[str, ServiceRuntime]) -> None:
    receiver.fail_first = 1000
    ctx = merchant.caller.account.ctx
    await merchant.bus.request(WEBHOOK_SET, {"url": receiver.url, "secret": SECRET}, ctx)
    commerce = services["commerce"]
    async with commerce.background(ctx.org_id).transaction() as tx:
        queued = await webhooks.queue_order_event(tx, "order_update", {"type": "order", "id": "ord_x",
                                                                      "checkout_session_id": "cs_x",
                                                                      "permalink_url": "https://m.test/o/x",
                                                                      "status": "shipped"})
        await tx.session.execute(sa.text("UPDATE commerce.webhook_deliveries SET max_attempts = 2 WHERE id = :id"),
                                 {"id": queued})
    [dead] = await eventually(lambda: deliveries(merchant, state="dead"), timeout=60)
    assert [a.status for a in dead.attempts] == [503, 503] and dead.attempts[-1].error == "HTTP 503"


async def test_an_unsigned_or_wrongly_signed_delivery_is_refused_by_the_receiver(merchant: Merchant,
                                                                                 receiver: Receiver) -> None:
    receiver.secret = "not-the-merchants-secret"
    await merchant.bus.request(WEBHOOK_SET, {"url": receiver.url, "secret": SECRET}, merchant.caller.account.ctx)
    await buy(merchant)
    await eventually(lambda: asyncio.sleep(0, receiver.refused))
    assert receiver.refused[0] == "Webhook signature verification failed." and receiver.received == []


async def test_a_generated_secret_is_shown_once(merchant: Merchant, bus: BusClient) -> None:
    ctx = merchant.caller.account.ctx
    with pytest.raises(NotFound):
        await bus.request(WEBHOOK_GET, {}, ctx)
    created = await bus.request(WEBHOOK_SET, {"url": "https://platform.example/hooks"}, ctx)
    assert created.secret and created.secret.startswith("whsec_") and created.secret_hint == created.secret[-4:]
    shown = await bus.request(WEBHOOK_GET, {}, ctx)
    assert shown.secret is None and shown.url == "https://platform.example/hooks"


async def test_no_endpoint_no_delivery(merchant: Merchant) -> None:
    await buy(merchant)
    assert await deliveries(merchant) == []


async def test_the_webhook_from_the_cli(one: Cli) -> None:  # noqa: F811
    shown = (await one("checkout", "webhook", "set", "https://platform.example/hooks")).ok()
    assert "https://platform.example/hooks" in shown and "whsec_" in shown and "not shown again" in shown
    assert "whsec_" not in (await one("checkout", "webhook", "show")).ok()
    given = (await one("checkout", "webhook", "set", "https://p.example/h", "--secret", SECRET, "--json")).json()
    assert given["secret"] is None and given["secret_hint"] == SECRET[-4:]
    assert "no deliveries" in (await one("checkout", "webhook", "deliveries")).ok()
    one_line_error(await one("checkout", "webhook", "set", "not-a-url"), 6, "invalid")


async def test_another_org_sees_none_of_the_webhook(merchant: Merchant, rival: Merchant, receiver: Receiver,
                                                    services: dict[str, ServiceRuntime]) -> None:
    await merchant.bus.request(WEBHOOK_SET, {"url": receiver.url, "secret": SECRET}, merchant.caller.account.ctx)
    await buy(merchant)
    await eventually(lambda: deliveries(merchant, state="delivered"))
    with pytest.raises(NotFound):
        await rival.bus.request(WEBHOOK_GET, {}, rival.caller.account.ctx)
    assert await deliveries(rival) == []
    await buy(rival)  # the rival's own order is not announced to the merchant's platform
    await asyncio.sleep(2 * services["commerce"].settings.commerce_webhook_poll)
    assert len(receiver.received) == 1
