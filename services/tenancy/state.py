"""One tenancy replica's state (`runtime.state`): its key cache, and what it tells other processes on core NATS.

Two messages leave a replica that are not requests to a service, so the work
context's `call` does not carry them: the key invalidation broadcast (every
replica, itself included, drops the named keys from its cache) and the mail drop
(a token handed to the mailer). Both are published here, so the service layer
names what it wants (`invalidate_keys`, `send_mail`) and holds no NATS.
"""

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError

from services.tenancy.schemas import KEYS_INVALIDATE_SUBJECT, MAIL_DROP_SUBJECT, MailDrop
from shared.kernel.errors import Unavailable

if TYPE_CHECKING:
    from services.tenancy.service_keys import Credentials
    from shared.runtime.service import ServiceRuntime

log = logging.getLogger(__name__)


class TenancyState:
    """The pepper and verified-key cache of one replica, and its two core-NATS outlets."""

    def __init__(self, keys: "Credentials", nc: NatsClient) -> None:
        self.keys = keys
        self._nc = nc
        self._subscription: Subscription | None = None
        self._broadcasts: set[asyncio.Task[None]] = set()

    async def listen(self) -> None:
        """Hear the other replicas' invalidations (no queue group: every replica hears each one)."""
        self._subscription = await self._nc.subscribe(KEYS_INVALIDATE_SUBJECT, cb=self._on_invalidation)

    async def close(self) -> None:
        """Stop hearing invalidations; let the broadcasts already under way go out."""
        if self._subscription is not None:
            await self._subscription.unsubscribe()
            self._subscription = None
        if self._broadcasts:
            await asyncio.gather(*self._broadcasts, return_exceptions=True)

    def invalidate_keys(
        self, *, key_ids: Sequence[str] = (), org_id: UUID | None = None, person_id: UUID | None = None
    ) -> None:
        """Drop matching keys from this replica's cache now, and tell every replica to do the same.

        The broadcast is not awaited: the request that revoked a key does not wait
        on it, and a lost one is bounded by the cache's TTL.
        """
        message = {"key_ids": list(key_ids), "org_id": str(org_id) if org_id else None,
                   "person_id": str(person_id) if person_id else None}
        self.keys.apply_invalidation(message)
        task = asyncio.create_task(self._nc.publish(KEYS_INVALIDATE_SUBJECT, json.dumps(message).encode()))
        self._broadcasts.add(task)
        task.add_done_callback(self._broadcasts.discard)

    async def send_mail(self, drop: MailDrop) -> None:
        """Hand a message to the mailer on the mail drop; `Unavailable` when NATS does not take it."""
        try:
            await self._nc.publish(MAIL_DROP_SUBJECT, drop.model_dump_json().encode())
        except NatsError as error:
            raise Unavailable("could not hand the email to the mail drop: ask again") from error

    async def _on_invalidation(self, msg: Msg) -> None:
        try:
            self.keys.apply_invalidation(json.loads(msg.data))
        except (ValueError, TypeError) as error:
            log.warning("tenancy: ignored a malformed key invalidation: %r", error)


def state_of(runtime: "ServiceRuntime") -> TenancyState:
    """This replica's state: one per running tenancy, so two replicas in one process (a test) keep their own caches."""
    state: Any = runtime.state
    assert isinstance(state, TenancyState), "tenancy used before it started"
    return state
