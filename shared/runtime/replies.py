"""One wildcard inbox per NATS connection for the replies it waits for: a `BusClient`'s requests' answers, and a
JetStream publish's ack (`shared.runtime.bus.publish_to_stream`). Kept apart from `bus` (the broker, FastStream),
so a bus client (the SDK, the CLI) loads none of it."""

import asyncio
import itertools
import weakref

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import NoRespondersError, TimeoutError as NatsTimeout
from nats.js.api import Header

_NO_RESPONDERS = "503"


class ReplyInbox:
    """One wildcard inbox subscription for every request of a client (`BusClient`) or every JetStream publish of a
    connection (`reply_inbox`).

    It is what nats-py's `request()` does, minus its per-call costs that showed
    in profiles: a random token from the OS (a syscall), an `asyncio.wait_for`
    and a timer per call. A counter names the reply inbox, and one timer, set for
    the earliest deadline of the requests waiting, expires those that are due.
    """

    def __init__(self, nc: NatsClient) -> None:
        self.nc = nc
        self.prefix: str | None = None
        self.pending: dict[str, tuple[asyncio.Future[Msg], float]] = {}
        self._counter = itertools.count()
        self._subscribing = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def request(self, subject: str, body: bytes, headers: dict[str, str], timeout: float) -> Msg:
        prefix = self.prefix or await self._subscribe()
        inbox = f"{prefix}{next(self._counter)}"
        loop = self._loop
        future: asyncio.Future[Msg] = loop.create_future()
        deadline = loop.time() + timeout
        self.pending[inbox] = (future, deadline)
        if self._timer is None or deadline < self._timer.when():
            self._expire_at(deadline)
        try:
            await self.nc.publish(subject, body, reply=inbox, headers=headers)
            reply = await future
        finally:
            del self.pending[inbox]
        if reply.headers and reply.headers.get(Header.STATUS) == _NO_RESPONDERS:  # the server's "nobody listens"
            raise NoRespondersError
        return reply

    async def _subscribe(self) -> str:
        async with self._subscribing:
            if self.prefix is None:
                prefix = f"{self.nc.new_inbox()}."
                await self.nc.subscribe(f"{prefix}*", cb=self._deliver)
                self._loop = asyncio.get_running_loop()
                self.prefix = prefix
        return self.prefix

    async def _deliver(self, msg: Msg) -> None:
        waiting = self.pending.get(msg.subject)
        if waiting is not None and not waiting[0].done():
            waiting[0].set_result(msg)

    def _expire_at(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(when, self._expire_due)

    def _expire_due(self) -> None:
        """Time out the requests past their deadline; wait for the earliest of the others."""
        self._timer = None
        now, earliest = self._loop.time(), None
        for future, deadline in list(self.pending.values()):
            if deadline <= now:
                if not future.done():
                    future.set_exception(NatsTimeout())
            elif earliest is None or deadline < earliest:
                earliest = deadline
        if earliest is not None:
            self._expire_at(earliest)


_INBOXES: weakref.WeakKeyDictionary[NatsClient, ReplyInbox] = weakref.WeakKeyDictionary()


def reply_inbox(nc: NatsClient) -> ReplyInbox:
    """The connection's one inbox for JetStream acks (subscribed on first use)."""
    inbox = _INBOXES.get(nc)
    if inbox is None:
        inbox = _INBOXES[nc] = ReplyInbox(nc)
    return inbox
