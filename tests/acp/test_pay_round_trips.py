"""The statements of a `complete`'s pay transaction (checkout_payment.pay), counted on its connection.

Each statement is a round trip and ~125 µs of client CPU, so the ones this transaction runs are pinned here: the
attempt, the order and its numbered body in one statement; the webhook endpoint's lookup and the delivery's insert in
one; no savepoint around a charge whose provider declines before it writes (the test PSP). Every case runs `pay` in
a transaction of the commerce replica's own that is rolled back afterwards (`_Undo`), so nothing of it stays.

Counting: a statement goes either through SQLAlchemy (its `before_cursor_execute` event, savepoints included) or
on the driver (`shared/runtime/sql.py`, which asyncpg's query logger sees); SQLAlchemy's own statements run as
prepared statements, which that logger does not report, so none is counted twice.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from services.commerce import psp, repository_checkout, repository_payments
from services.commerce.checkout_payment import pay
from services.commerce.models_checkout import SessionRow
from services.commerce.psp_test import TestModeProvider
from shared.contracts.commerce.payments import Charge, PaymentDeclined
from shared.contracts.commerce.webhooks import WEBHOOK_SET
from shared.runtime.context import WorkContext
from shared.runtime.service import ServiceRuntime
from shared.runtime.sql import driver
from tests.acp.conftest import Merchant, create_body
from tests.acp.test_delegate_payment import delegate, delegation

ORDER_KEYS = ["type", "id", "checkout_session_id", "order_number", "permalink_url", "status", "line_items", "totals",
              "confirmation"]
"""The answered Order's keys, in the order its JSON has always had them."""
URL = "https://platform.example/hooks"


class _Undo(Exception):
    """Raised at the end of a case: its transaction rolls back."""


@pytest.fixture
def commerce(services: dict[str, ServiceRuntime]) -> ServiceRuntime:
    return services["commerce"]


@asynccontextmanager
async def counted(tx: WorkContext) -> AsyncIterator[list[str]]:
    """The text of every statement `tx`'s connection runs in the block (see the module's doc), not in order: the
    driver's logger reports a statement after it ran, SQLAlchemy's event before."""
    assert tx.session is not None
    seen: list[str] = []
    connection = tx.session.sync_connection

    def through_sqlalchemy(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    def on_driver(record: Any) -> None:
        seen.append(record.query)

    event.listen(connection, "before_cursor_execute", through_sqlalchemy)
    driver(tx.session).add_query_logger(on_driver)
    try:
        yield seen
        await asyncio.sleep(0)  # the driver's logger is called soon after each statement, not during it
    finally:
        driver(tx.session).remove_query_logger(on_driver)
        event.remove(connection, "before_cursor_execute", through_sqlalchemy)


def touching(statements: list[str], *words: str) -> list[str]:
    return [s for s in statements if any(word in s for word in words)]


async def ready(merchant: Merchant, max_amount: int = 1000) -> tuple[str, str]:
    """A session ready for payment (one digital product: no address needed) and a vault token for it."""
    ebook = await merchant.product("E-book", 1000, tax_category="digital")
    session = await merchant.create(create_body(ebook, buyer={"email": "reader@example.com"}))
    assert session["status"] == "ready_for_payment", session
    return session["id"], await delegate(merchant.caller, delegation(session["id"], max_amount=max_amount))


async def paid(commerce: ServiceRuntime, org_id: UUID, session_id: str, token: str,
               check: Callable[[WorkContext, SessionRow, Any, list[str]], Any]) -> None:
    """`pay` with `token` in a transaction that is rolled back once `check(tx, row, queued, statements)` passed."""
    with pytest.raises(_Undo):
        async with commerce.background(org_id).transaction() as tx:
            row = await repository_checkout.get_session(tx.session, org_id, session_id)
            assert row is not None
            async with counted(tx) as statements:
                queued = await pay(tx, row, "charge", token, None)
            await check(tx, row, queued, statements)
            raise _Undo


async def _stored_order(tx: WorkContext, order_id: str) -> Any:
    return (await tx.session.execute(sa.text(  # type: ignore[union-attr]
        "SELECT order_number, body, provider, charge_id, total, currency FROM commerce.orders WHERE id = :id"),
        {"id": order_id})).one()


async def _attempts(tx: WorkContext, session_id: str) -> list[Any]:
    return list(await tx.session.execute(sa.text(  # type: ignore[union-attr]
        "SELECT provider, outcome, reason, amount, currency, charge_id FROM commerce.payment_attempts"
        " WHERE checkout_session_id = :id"), {"id": session_id}))


async def test_a_card_complete_pays_in_six_statements(merchant: Merchant, commerce: ServiceRuntime) -> None:
    session_id, token = await ready(merchant)

    async def check(tx: WorkContext, row: SessionRow, queued: Any, statements: list[str]) -> None:
        assert queued is not None and row.status == "completed"
        assert touching(statements, "SAVEPOINT") == [], statements
        assert len(touching(statements, "commerce.orders", "commerce.payment_attempts")) == 1, statements
        assert len(touching(statements, "commerce.webhook_")) == 1, statements
        # the spend, the order, the webhook, the session, the outbox's event, the settlement (were 10)
        assert len(statements) <= 6, "\n".join(statements)
        answered = row.body["order"]
        stored = await _stored_order(tx, row.order_id or "")
        assert list(answered) == ORDER_KEYS and stored.body == answered
        assert answered["order_number"] == answered["confirmation"]["confirmation_number"] == str(stored.order_number)
        assert list(answered["confirmation"]) == ["confirmation_number"]
        [attempt] = await _attempts(tx, session_id)
        assert tuple(attempt) == ("test", "succeeded", None, row.total, row.currency, stored.charge_id)
        assert (stored.provider, stored.total, stored.currency) == ("test", row.total, row.currency)
        assert stored.charge_id and stored.charge_id.startswith("ch_test_")

    await paid(commerce, merchant.caller.account.org_id, session_id, token, check)


async def test_an_org_with_an_endpoint_queues_its_order_in_the_same_statements(merchant: Merchant,
                                                                               commerce: ServiceRuntime) -> None:
    ctx = merchant.caller.account.ctx
    await merchant.bus.request(WEBHOOK_SET, {"url": URL, "secret": "whsec_" + "s" * 24}, ctx)
    session_id, token = await ready(merchant)

    async def check(tx: WorkContext, row: SessionRow, queued: Any, statements: list[str]) -> None:
        assert len(touching(statements, "commerce.webhook_")) == 1 and len(statements) <= 6, statements
        [delivery] = list(await tx.session.execute(sa.text(  # type: ignore[union-attr]
            "SELECT org_id, event_type, order_id, checkout_session_id, url, body, state, max_attempts"
            " FROM commerce.webhook_deliveries WHERE checkout_session_id = :id"), {"id": session_id}))
        order = row.body["order"]
        body = json.dumps({"type": "order_create", "data": order}, separators=(",", ":"), ensure_ascii=False)
        assert tuple(delivery) == (ctx.org_id, "order_create", order["id"], session_id, URL, body, "pending",
                                   commerce.settings.commerce_webhook_max_attempts)

    await paid(commerce, ctx.org_id, session_id, token, check)


async def test_a_decline_writes_its_attempt_without_a_savepoint(merchant: Merchant, commerce: ServiceRuntime) -> None:
    session_id, token = await ready(merchant, max_amount=999)  # the session's total is 1000

    async def check(tx: WorkContext, row: SessionRow, queued: Any, statements: list[str]) -> None:
        assert queued is None and row.status == "ready_for_payment"
        assert row.body["messages"][-1]["code"] == "payment_declined"
        assert touching(statements, "SAVEPOINT") == [] and len(statements) <= 5, statements
        [attempt] = await _attempts(tx, session_id)
        assert tuple(attempt) == ("test", "declined", "over_allowance", row.total, row.currency, None)
        kept = await repository_payments.get(tx.session, row.org_id, token)  # type: ignore[arg-type]
        assert kept is not None and kept.charged_at is None

    await paid(commerce, merchant.caller.account.org_id, session_id, token, check)


class _WritesThenDeclines(TestModeProvider):
    """A provider that writes before it knows the outcome: it spends the token, then declines."""

    declines_before_writing = False

    async def charge(self, ctx: WorkContext, **charge: Any) -> Charge:
        await super().charge(ctx, **charge)
        raise PaymentDeclined("card_declined", "declined after the provider wrote")


class _WritesThenCharges(TestModeProvider):
    """The test PSP, as a provider that does not promise to decline before it writes."""

    declines_before_writing = False


@pytest.mark.parametrize(("provider", "outcome"), [(_WritesThenDeclines, "declined"),
                                                   (_WritesThenCharges, "succeeded")])
async def test_a_provider_that_may_decline_after_writing_charges_in_a_savepoint(
        merchant: Merchant, commerce: ServiceRuntime, monkeypatch: pytest.MonkeyPatch, provider: type,
        outcome: str) -> None:
    session_id, token = await ready(merchant)
    monkeypatch.setitem(psp.PROVIDERS, commerce.settings.commerce_psp, lambda settings: provider())

    async def check(tx: WorkContext, row: SessionRow, queued: Any, statements: list[str]) -> None:
        assert len(touching(statements, "SAVEPOINT")) == 2, statements  # SAVEPOINT, then its RELEASE or ROLLBACK TO
        [attempt] = await _attempts(tx, session_id)
        assert attempt.outcome == outcome
        kept = await repository_payments.get(tx.session, row.org_id, token)  # type: ignore[arg-type]
        assert kept is not None and (kept.charged_at is None) == (outcome == "declined")  # a decline's spend undone

    await paid(commerce, merchant.caller.account.org_id, session_id, token, check)
