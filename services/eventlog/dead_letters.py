"""Every consumer's dead letters, stored: the `ONE_DEADLETTERS` stream into `eventlog.dead_letters`.

A consumer anywhere (knowledge's trigger, the agents' jobs, the graph's identity mirror, ...) that
gives up on a message sends it, with its reason, into the dead-letter stream before it acks the
message (`shared.runtime.consumer`). This consumer stores those letters in the same table as the
ingest's own, where `event.dead_letters` (`one events deadletters`, `GET /v1/events/deadletters`)
shows them to the org they belong to. The ingest stores its own letters in its transaction, so
those (`one.deadletter.eventlog`) are only acked here. `dedup_key` is unique: a redelivered letter
adds nothing. A letter that is not even JSON is kept as it came, never refused (refusing would
send it round again).
"""

import json
import logging
from typing import Any
from uuid import UUID

import asyncpg
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from services.eventlog import repository
from services.eventlog.settings import EventlogSettings
from shared.kernel import subjects
from shared.runtime.bus import dead_letters_stream_config, ensure_stream
from shared.runtime.consumer import ConsumerPolicy, DurableConsumer, Poison, delivery_info
from shared.runtime.db import app_url, plain_url

log = logging.getLogger(__name__)
OWN_LETTERS = subjects.dead_letter("eventlog")


class DeadLetterStore:
    def __init__(self, settings: EventlogSettings) -> None:
        self.settings = settings
        policy = ConsumerPolicy(
            durable="eventlog-deadletters",
            subjects=(subjects.ALL_DEAD_LETTERS,),
            stream=settings.dead_letters_stream,
            batch_size=100,
            fetch_wait=settings.eventlog_fetch_wait,
            max_deliver=-1,  # a letter that cannot be stored yet (database down) waits; it is never given up on
            retry_delay=settings.eventlog_retry_delay,
            retry_delay_max=settings.eventlog_retry_delay_max,
        )
        self.consumer = DurableConsumer("eventlog", policy, self.store)
        self._pool: asyncpg.Pool | None = None

    async def start(self, nc: NatsClient) -> None:
        await ensure_stream(nc.jetstream(), dead_letters_stream_config(self.settings))
        self._pool = await asyncpg.create_pool(plain_url(app_url(self.settings)), min_size=1, max_size=1)
        await self.consumer.start(nc)

    async def stop(self) -> None:
        await self.consumer.stop()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def store(self, msgs: list[Msg], _: list[Msg]) -> list[Poison]:
        letters = [letter_of(msg) for msg in msgs if msg.subject != OWN_LETTERS]
        if letters:
            assert self._pool is not None
            async with self._pool.acquire() as conn:
                await repository.insert_dead_letters(conn, letters)
        return []


def letter_of(msg: Msg) -> dict[str, Any]:
    """The table's row for one letter as a consumer sent it (`DurableConsumer.dead_letter`)."""
    seq, _ = delivery_info(msg)
    try:
        body = json.loads(msg.data)
        if not isinstance(body, dict):
            raise ValueError("not an object")
        return {
            "dedup_key": str(body.get("dedup_key") or f"{msg.subject}:{seq}"),
            "org_id": _uuid(body.get("org_id")),
            "event_id": _uuid(body.get("event_id")),
            "subject": str(body.get("subject") or msg.subject),
            "stream_seq": body.get("stream_seq") if isinstance(body.get("stream_seq"), int) else None,
            "reason_code": str(body.get("reason_code") or "unknown"),
            "reason": f"{body.get('consumer') or msg.subject}: {body.get('reason') or ''}",
            "raw": str(body.get("raw") or ""),
            "deliveries": body.get("deliveries") if isinstance(body.get("deliveries"), int) else 1,
        }
    except ValueError:
        log.warning("an unreadable dead letter on %s, kept as it came", msg.subject)
        return {"dedup_key": f"{msg.subject}:{seq}", "org_id": None, "event_id": None, "subject": msg.subject,
                "stream_seq": None, "reason_code": "unreadable_dead_letter", "reason": "the dead letter is not JSON",
                "raw": msg.data.decode(errors="replace").replace("\x00", "\\u0000"), "deliveries": 1}


def _uuid(value: Any) -> UUID | None:
    try:
        return UUID(str(value)) if value else None
    except ValueError:
        return None
