"""The two sides of the request/reply benchmark, each run as its own process.

`python -m tests.bench.rr_processes serve bare|ours <nats> <db> <ratio>` answers
until killed; `... measure bare|ours <nats> <db> <ratio> <n> <n_tp>` prints one
JSON line with p50/p99 (µs) and throughput (msg/s, 64 in flight).
"""

import asyncio
import json
import sys

import nats
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from shared.kernel.envelope import AuthContext, Envelope
from shared.kernel.ids import uuid7
from shared.kernel.settings import Settings
from shared.runtime.client import BusClient
from shared.runtime.service import ServiceRuntime
from shared.runtime.tracing import setup_tracing
from tests.bench.harness import request_reply_figures

BARE_SUBJECT = "bench.bare.echo"
IN_FLIGHT = 64


class DiscardExporter(SpanExporter):
    """Pays the production cost of batching spans, without a collector to send them to."""

    def export(self, spans: object) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def settings_for(nats_url: str, db_url: str, ratio: float) -> Settings:
    return Settings(nats_url=nats_url, database_url=db_url, trace_sample_ratio=ratio, log_level="WARNING")


def tracing(name: str, settings: Settings) -> None:
    provider = setup_tracing(name, settings=settings)
    provider.add_span_processor(BatchSpanProcessor(DiscardExporter()))


async def serve(kind: str, nats_url: str, db_url: str, ratio: str) -> None:
    if kind == "bare":
        nc = await nats.connect(nats_url)

        async def respond(msg: nats.aio.msg.Msg) -> None:
            await msg.respond(msg.data)

        await nc.subscribe(BARE_SUBJECT, queue="bench", cb=respond)
    else:
        from tests.probe.app import definition

        settings = settings_for(nats_url, db_url, float(ratio))
        tracing("probe", settings)
        await ServiceRuntime(definition, settings).start(migrate=False)
    print("ready", flush=True)
    await asyncio.Event().wait()


async def measure(kind: str, nats_url: str, db_url: str, ratio: str, n: str, n_tp: str) -> None:
    from tests.probe.app import ECHO

    settings = settings_for(nats_url, db_url, float(ratio))
    if kind == "bare":
        nc = await nats.connect(nats_url)
        # The same bytes our client sends, so both sides move equal payloads.
        body = Envelope(type="probe.echo", org_id=uuid7(), actor_id=uuid7(), payload={"text": "hello", "n": 1}).to_bytes()

        async def call() -> object:
            return await nc.request(BARE_SUBJECT, body, timeout=10)
    else:
        tracing("bench-client", settings)
        bus = await BusClient.connect(settings)
        ctx = AuthContext(uuid7(), uuid7())
        payload = {"text": "hello", "n": 1}

        async def call() -> object:
            return await bus.request(ECHO, payload, ctx, timeout=10)

    print(json.dumps(await request_reply_figures(call, int(n), int(n_tp), IN_FLIGHT)))


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    asyncio.run(serve(*args) if command == "serve" else measure(*args))
