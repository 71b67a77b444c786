"""Cross-protocol analytics: revenue by metadata.protocol, counts per type per day."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from shared.kernel.envelope import AuthContext
from shared.tools.sdk.events import Events
from tests.eventlog.conftest import wait_for_events

pytestmark = pytest.mark.usefixtures("services")

NOW = datetime.now(UTC)
WINDOW = (NOW - timedelta(days=3), NOW + timedelta(hours=6))  # the module is imported when the session starts: leave it time


async def test_revenue_by_protocol_sums_every_protocol_separately(
    events: Events, admin: asyncpg.Connection, org: AuthContext
) -> None:
    payments = [
        ("x402", "0.10"), ("x402", 0.2), ("x402", 1000),
        ("acp", "19.99"), ("acp", 5),
        ("ap2", "7.5"),
        ("a2a", 1), ("a2a", "2.25"),
        ("traditional", 100),
    ]
    items = [{"type": "payment_processed", "metadata": {"protocol": p, "amount": a, "currency": "USD"}} for p, a in payments]
    items += [
        {"type": "payment_requested", "metadata": {"protocol": "x402", "amount": 999, "currency": "USD"}},  # not processed
        {"type": "payment_processed", "metadata": {"protocol": "acp", "amount": 50, "currency": "USD"},
         "occurred_at": (NOW - timedelta(days=10)).isoformat()},  # outside the range
        {"type": "content_viewed", "metadata": {"amount": 12345}},  # not a payment
    ]
    await events.publish_many(items)
    await wait_for_events(admin, org.org_id, len(items))
    revenue = await events.revenue(*WINDOW)
    assert revenue.by_protocol == {
        "x402": Decimal("1000.30"), "acp": Decimal("24.99"), "ap2": Decimal("7.5"), "a2a": Decimal("3.25"),
        "traditional": Decimal("100"),
    }
    assert {r.protocol: r.count for r in revenue.totals} == {"x402": 3, "acp": 2, "ap2": 1, "a2a": 2, "traditional": 1}
    every_status = await events.revenue(*WINDOW, status=None)
    assert every_status.by_protocol["x402"] == Decimal("1999.30")


async def test_counts_per_type_per_day(events: Events, admin: asyncpg.Connection, org: AuthContext) -> None:
    # every item carries its own time: a run that crosses midnight must not move "today" under the test
    noon = NOW.replace(hour=12, minute=0, second=0, microsecond=0)
    today, before = noon.isoformat(), (noon - timedelta(days=1)).isoformat()
    items = [{"type": "user_login", "occurred_at": today}] * 3 + [{"type": "user_login", "occurred_at": before}]
    items += [{"type": "content_liked", "occurred_at": today}]
    await events.publish_many(items)
    await wait_for_events(admin, org.org_id, len(items))
    window = (noon - timedelta(days=3), noon + timedelta(days=1))
    counts = {(c.day, c.type): c.count for c in (await events.daily_counts(*window)).counts}
    today, before = noon.date(), (noon - timedelta(days=1)).date()
    assert counts == {(today, "user_login"): 3, (before, "user_login"): 1, (today, "content_event"): 1}
    only_logins = await events.daily_counts(*window, types=["user_login"])
    assert sum(c.count for c in only_logins.counts) == 4
