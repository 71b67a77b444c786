"""The delivery loop: each replica sends due webhooks, signs them, retries with backoff, records every attempt.

A claim leases a batch of due deliveries of every org (`FOR UPDATE SKIP LOCKED`, repository_webhooks.py),
so replicas share the work and a replica that dies mid-attempt only delays its deliveries by one lease.
A 2xx answer delivers; anything else (another status, a timeout, a refused connection) is retried
after `base * 2^(n-1)` seconds (capped, jittered 50-100 %) until the attempts run out (`dead`). The
same loop deletes expired idempotency records every `commerce_sweep_interval`.
"""

import asyncio
import logging
import random
import time
from datetime import UTC, datetime

import httpx

from services.commerce import repository_webhooks as repo, service_idempotency
from services.commerce.settings import CommerceSettings
from services.commerce.webhooks import open_secret
from shared.contracts.commerce.webhooks import SIGNATURE_HEADER, sign
from shared.kernel.envelope import Protocol
from shared.kernel.ontology.types import EventType
from shared.runtime.rounds import PerReplica, Rounds
from shared.runtime.service import ServiceRuntime

log = logging.getLogger(__name__)
_BATCH = 16


def backoff(settings: CommerceSettings, failed_attempts: int) -> float:
    """Seconds before the next attempt after `failed_attempts` failures: exponential, capped, jittered."""
    ceiling = min(settings.commerce_webhook_backoff_max,
                  settings.commerce_webhook_backoff_base * 2.0 ** max(0, failed_attempts - 1))
    return ceiling * random.uniform(0.5, 1.0)


class DeliveryLoop(Rounds):
    def __init__(self, runtime: ServiceRuntime) -> None:
        super().__init__("commerce-webhooks", batch=_BATCH, poll=runtime.settings.commerce_webhook_poll)
        self.runtime = runtime
        self.settings: CommerceSettings = runtime.settings
        self.http = httpx.AsyncClient(timeout=self.settings.commerce_webhook_timeout, follow_redirects=False)
        self.next_sweep = 0.0

    async def stop(self) -> None:
        await super().stop()
        await self.http.aclose()

    async def round(self) -> int:
        sent = await self.deliver_due()
        await self.sweep_when_due()
        return sent

    async def deliver_due(self) -> int:
        lease = self.settings.commerce_webhook_timeout + 5.0
        async with self.runtime.db.transaction() as session:
            due = await repo.claim(session, limit=_BATCH, lease=lease)
        await asyncio.gather(*(self.attempt(delivery) for delivery in due))
        return len(due)

    async def sweep_when_due(self) -> None:
        if time.monotonic() < self.next_sweep:
            return
        self.next_sweep = time.monotonic() + self.settings.commerce_sweep_interval
        async with self.runtime.db.transaction() as session:
            swept = await service_idempotency.sweep(session)
        if swept:
            log.info("commerce: deleted %d expired idempotency records", swept)

    async def attempt(self, delivery: repo.DueDelivery) -> None:
        started_at, started = datetime.now(UTC), time.perf_counter()
        status, error = await self.send(delivery)
        duration_ms = int((time.perf_counter() - started) * 1000)
        failures = delivery.attempts + 1
        if status is not None and 200 <= status < 300:
            state, delay = "delivered", 0.0
        elif failures >= delivery.max_attempts or delivery.url is None:
            state, delay = "dead", 0.0
        else:
            state, delay = "pending", backoff(self.settings, failures)
        ctx = self.runtime.background(delivery.org_id)
        async with ctx.transaction() as tx:
            assert tx.session is not None
            recorded = await repo.record(tx.session, delivery, state=state, started_at=started_at,
                                         duration_ms=duration_ms, status=status, error=error, delay=delay)
            if recorded and state != "pending":
                await tx.emit(EventType.COMMUNICATION_EVENT, protocol=Protocol.ACP, metadata={
                    "protocol": "acp", "messageType": delivery.event_type, "direction": "outbound",
                    "channel": "webhook", "status": state, "deliveryId": str(delivery.id), "attempts": failures,
                    "httpStatus": status})

    async def send(self, delivery: repo.DueDelivery) -> tuple[int | None, str | None]:
        """The receiver's status (None if none came) and what went wrong, if anything did."""
        if delivery.url is None or delivery.secret_sealed is None:
            return None, "the organization has no webhook endpoint any more"
        body = delivery.body.encode()
        secret = await open_secret(self.runtime, delivery.secret_sealed, delivery.org_id)
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body),
                   "Request-Id": str(delivery.id), "Timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z")}
        try:
            response = await self.http.post(delivery.url, content=body, headers=headers)
        except httpx.HTTPError as failure:
            return None, f"{type(failure).__name__}: {failure}"[:500]
        return response.status_code, None if response.is_success else f"HTTP {response.status_code}"


LOOPS = PerReplica(DeliveryLoop)
start, stop = LOOPS.start, LOOPS.stop
