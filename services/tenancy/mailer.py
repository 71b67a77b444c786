"""The mailer adapter: delivers what tenancy drops on `one.notify.email` (email verification and invitation tokens,
and reminders tenancy resolved to a member's address: notify_email.py).

Run it as `one mailer` (or `python -m services.tenancy.mailer`, which reads its
settings from the environment alone); `one up` starts one. Replicas share the queue group `one.mailer`, so each drop is mailed once.
With `ONE_SMTP_HOST` set it sends over SMTP; without, it writes each mail as an
.eml file under `<data_dir>/mail` (0600) and logs the path, so a developer on
`one up` can still read the token.

The drop is core NATS (tokens must not be kept in the event stream): at most
once, so a mailer that is down loses the mail and the person asks again. What
the mailer does receive it does not drop silently: a transient SMTP failure is
retried with doubling delays (`ONE_MAIL_RETRIES`, `ONE_MAIL_RETRY_DELAY`); a
permanent one, or the last retry, is counted and logged at error level. A
malformed drop is counted, logged and skipped. The token is never logged.

Its NATS user may only subscribe to `one.notify.email` (deploy/nats), so it has
no `one health`; a heartbeat file, touched after each NATS round trip, is what
`one mailer --check` (the probes) looks at.
"""

import argparse
import asyncio
import logging
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from prometheus_client import Counter as PromCounter

from services.tenancy.mail_delivery import (
    DeliveryFailed,
    MalformedDrop,
    Transport,
    parse_drop,
    render,
    transport_for,
)
from services.tenancy.schemas import MAIL_DROP_SUBJECT
from services.tenancy.settings import TenancySettings
from shared.kernel import subjects
from shared.kernel.settings import Settings
from shared.runtime.bus import connect_options, server_has_everything_sent
from shared.runtime.metrics import metrics_served

log = logging.getLogger("services.tenancy.mailer")  # also under `python -m`, where __name__ is __main__

QUEUE_GROUP = subjects.queue_group("mailer")
DRAIN_TIMEOUT = 25.0
"""Seconds a stopping mailer gives mails in flight (retries included); under the 30 s grace of compose and k8s."""

_SENT = PromCounter("one_mailer_sent", "Mails handed to the SMTP server or written to the mail directory", ["purpose"])
_FAILED = PromCounter("one_mailer_failed", "Mails that could not be delivered", ["purpose", "reason"])
_MALFORMED = PromCounter("one_mailer_malformed", "Mail drop messages that were not a mail and were skipped")
_RETRIES = PromCounter("one_mailer_retries", "Delivery attempts repeated after a transient failure")


@dataclass
class MailerStats:
    """This replica's counts; each also moves the process's Prometheus counter (across mailers)."""

    sent: int = 0
    failed: int = 0
    malformed: int = 0
    retries: int = 0

    def count_sent(self, purpose: str) -> None:
        self.sent += 1
        _SENT.labels(purpose=purpose).inc()

    def count_failed(self, purpose: str, reason: str, n: int = 1) -> None:
        self.failed += n
        _FAILED.labels(purpose=purpose, reason=reason).inc(n)

    def count_malformed(self) -> None:
        self.malformed += 1
        _MALFORMED.inc()

    def count_retry(self) -> None:
        self.retries += 1
        _RETRIES.inc()


class Mailer:
    """Subscribes to the mail drop and delivers each message, `mailer_concurrency` at a time."""

    def __init__(self, settings: TenancySettings, transport: Transport | None = None, *, subject: str = MAIL_DROP_SUBJECT) -> None:
        self.settings = settings
        self.transport = transport or transport_for(settings)
        self.subject = subject
        self.stats = MailerStats()
        self._slots = asyncio.Semaphore(settings.mailer_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._subscription: Subscription | None = None

    async def start(self, nc: NatsClient) -> None:
        self._subscription = await nc.subscribe(self.subject, queue=QUEUE_GROUP, cb=self._on_message)
        await server_has_everything_sent(nc)  # "started" means subscribed

    async def stop(self) -> None:
        """Take no more drops, then give the mails in flight `DRAIN_TIMEOUT` to finish."""
        if self._subscription is not None:
            await self._subscription.drain()
            self._subscription = None
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=DRAIN_TIMEOUT)
        for task in pending:
            task.cancel()
        if pending:
            self.stats.count_failed("unknown", "stopped", len(pending))
            log.error("mailer: stopped with %d mails undelivered (still retrying after %.0fs)", len(pending), DRAIN_TIMEOUT)

    async def _on_message(self, msg: Msg) -> None:
        await self._slots.acquire()  # all slots busy: drops wait in the subscription's queue
        task = asyncio.create_task(self._deliver_and_release(msg.data))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver_and_release(self, data: bytes) -> None:
        try:
            await self.handle(data)
        except Exception:  # a bug must not stop the subscriber; the traceback holds no mail content
            self.stats.count_failed("unknown", "error")
            log.exception("mailer: delivering a mail failed unexpectedly")
        finally:
            self._slots.release()

    async def handle(self, data: bytes) -> None:
        """Parse, render and deliver one drop message; every outcome is counted and logged (without the token)."""
        try:
            drop = parse_drop(data)
        except MalformedDrop as error:
            self.stats.count_malformed()
            log.warning("mailer: skipped a drop message (%d bytes): %s", len(data), error)
            return
        mail = render(drop, self.settings.mail_from)
        retries, delay = self.settings.mail_retries, self.settings.mail_retry_delay
        for attempt in range(retries + 1):
            try:
                where = await self.transport.send(mail)
            except DeliveryFailed as error:
                if error.transient and attempt < retries:
                    self.stats.count_retry()
                    wait = delay * 2**attempt
                    log.warning("mailer: %s mail to %s failed (%s); retry %d of %d in %.1fs",
                                drop.purpose, drop.to, error, attempt + 1, retries, wait)
                    await asyncio.sleep(wait)
                    continue
                reason = "gave up after retries" if error.transient else "permanent failure"
                self.stats.count_failed(drop.purpose, "transient" if error.transient else "permanent")
                log.error("mailer: %s mail to %s NOT delivered, %s (%d attempts): %s",
                          drop.purpose, drop.to, reason, attempt + 1, error)
                return
            self.stats.count_sent(drop.purpose)
            log.info("mailer: %s mail to %s: %s", drop.purpose, drop.to, where)
            return


def heartbeat_path(settings: Settings) -> Path:
    return settings.data_dir / "mailer.heartbeat"


def heartbeat_is_fresh(settings: TenancySettings) -> bool:
    """What the probes ask: did a mailer complete a NATS round trip within three heartbeat intervals?"""
    try:
        age = time.time() - heartbeat_path(settings).stat().st_mtime
    except OSError:
        return False
    return age < 3 * settings.mailer_heartbeat_interval


async def keep_heartbeat(nc: NatsClient, settings: TenancySettings) -> None:
    """Touch the heartbeat file after every successful NATS round trip, until cancelled."""
    path = heartbeat_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    interval = settings.mailer_heartbeat_interval
    while True:
        try:
            await nc.flush(timeout=max(1, int(interval)))
            path.touch()
        except (NatsError, OSError) as error:  # not connected (or no disk): the file ages and the probes notice
            log.warning("mailer: no NATS round trip: %r", error)
        await asyncio.sleep(interval)


async def run(settings: TenancySettings) -> None:
    """`one mailer`: deliver until SIGTERM or SIGINT, then finish the mails in flight."""
    nc = await nats.connect(**connect_options(settings, "one-mailer"))
    mailer = Mailer(settings)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await mailer.start(nc)
    beat = asyncio.create_task(keep_heartbeat(nc, settings), name="mailer-heartbeat")
    target = f"SMTP {settings.smtp_host}:{settings.smtp_port}" if settings.smtp_host else f".eml files in {settings.mail_path.resolve()}"
    log.info("mailer: delivering %s (queue group %s) to %s", MAIL_DROP_SUBJECT, QUEUE_GROUP, target)
    try:
        await stopping.wait()
    finally:
        beat.cancel()
        await mailer.stop()
        await nc.drain()
        heartbeat_path(settings).unlink(missing_ok=True)
        log.info("mailer stopped: %s", mailer.stats)


def deliver_until_signalled(settings: TenancySettings) -> int:
    """Serve the metrics and deliver until SIGTERM or SIGINT; the exit status (1, at once, when there is no NATS)."""
    if not settings.nats_url:
        log.error("mailer: nothing to read the mail drop from: set ONE_NATS_URL (or start the stack with `one up`)")
        return 1
    with metrics_served(settings):
        asyncio.run(run(settings))
    return 0


def main(argv: list[str] | None = None) -> None:
    """`python -m services.tenancy.mailer [--check]`: `one mailer` with the settings of the environment alone."""
    parser = argparse.ArgumentParser(prog="python -m services.tenancy.mailer", description="Deliver tenancy's mail drop.")
    parser.add_argument("--check", action="store_true", help="Only exit 0 when this host's mailer is alive (its probes).")
    arguments = parser.parse_args(argv)
    settings = TenancySettings()
    if arguments.check:
        sys.exit(0 if heartbeat_is_fresh(settings) else 1)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.exit(deliver_until_signalled(settings))


if __name__ == "__main__":
    main()
