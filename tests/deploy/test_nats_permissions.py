"""deploy/nats/nats-server.conf, exercised on a real nats-server: each service, connected with its own
credentials, can do its job, and is refused what belongs to another service."""

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest
from nats.errors import Error as NatsError, TimeoutError as NatsTimeout

from services.eventlog.ingest import EventIngest
from services.eventlog.settings import EventlogSettings
from services.tenancy.mailer import heartbeat_is_fresh
from services.tenancy.settings import TenancySettings
from shared.kernel import subjects
from shared.kernel.envelope import AuthContext
from shared.kernel.ids import uuid7
from shared.kernel.settings import Settings
from shared.runtime.bus import ensure_events_stream, server_has_everything_sent
from shared.runtime.client import BusClient
from shared.tools.sdk.events import Events
from shared.tools.stack import ADAPTERS, fetch_health
from tests.deploy.conftest import Connector
from tests.eventlog.conftest import owner_of

REFUSED_WAIT = 0.5  # a refused publish is dropped by the server; give a wrong delivery time to show up


def _collect(into: list):
    async def cb(msg) -> None:
        into.append(msg)

    return cb


async def _respond(msg) -> None:
    await msg.respond(b"ok")


async def _ignore(msg) -> None:
    pass


async def _settle(*connections) -> None:
    for nc in connections:
        await server_has_everything_sent(nc)
    await asyncio.sleep(REFUSED_WAIT)


async def test_wrong_password_is_refused(connect_as: Connector) -> None:
    with pytest.raises(NatsError):
        await connect_as("graph", password="not-the-password")


async def test_service_serves_its_subjects_and_its_callers_get_replies(connect_as: Connector) -> None:
    graph = await connect_as("graph")
    handled = []

    async def reply(msg) -> None:
        handled.append(msg.subject)
        await msg.respond(b"thing")  # allowed through allow_responses only: graph may not publish to _INBOX.>

    await graph.subscribe("one.graph.things.get", queue=subjects.queue_group("graph"), cb=reply)
    await server_has_everything_sent(graph)
    for caller in ("cli", "gateway", "agents", "knowledge"):  # who may call graph
        nc = await connect_as(caller)
        assert (await nc.request("one.graph.things.get", b"{}", timeout=2)).data == b"thing", caller
    assert len(handled) == 4
    assert not connect_as.violations("graph")


async def test_service_is_refused_other_services_subjects(connect_as: Connector) -> None:
    graph, knowledge = await connect_as("graph"), await connect_as("knowledge")
    received = []
    await knowledge.subscribe("one.knowledge.search", queue="one.knowledge", cb=_collect(received))
    await server_has_everything_sent(knowledge)

    await graph.publish("one.knowledge.search", b"{}")  # graph does not call knowledge
    with pytest.raises(NatsTimeout):
        await graph.request("one.knowledge.search", b"{}", timeout=0.5)
    await graph.publish("one.tenancy.organizations.create", b"{}")  # only the tenancy API other services need
    await graph.publish("one.tenancy.keys.invalidate", b"{}")  # tenancy's internal broadcast
    await graph.publish("one.eventlog.committed.x", b"0")  # the ingest's internal broadcast
    await graph.publish("_INBOX.someone-elses-reply", b"forged")  # replies only to requests it received
    await _settle(graph, knowledge)

    assert received == []
    violations = " ".join(connect_as.violations("graph"))
    for subject in ("one.knowledge.search", "one.tenancy.organizations.create", "one.tenancy.keys.invalidate",
                    "one.eventlog.committed.x", "_INBOX.someone-elses-reply"):
        assert f'publish to "{subject.lower()}"' in violations, subject


async def test_service_cannot_listen_to_other_services(connect_as: Connector) -> None:
    graph, knowledge, cli = await connect_as("graph"), await connect_as("knowledge"), await connect_as("cli")
    snooped = []
    await graph.subscribe("one.knowledge.>", cb=_collect(snooped))
    await graph.subscribe("one.tenancy.keys.verify", queue="one.tenancy", cb=_collect(snooped))
    await knowledge.subscribe("one.knowledge.search", queue="one.knowledge", cb=_respond)
    await _settle(graph, knowledge)

    assert (await cli.request("one.knowledge.search", b"{}", timeout=2)).data == b"ok"
    await cli.publish("one.tenancy.keys.verify", b"{}")
    await _settle(cli)
    assert snooped == []
    violations = " ".join(connect_as.violations("graph"))
    assert 'subscription to "one.knowledge.>"' in violations
    assert 'subscription to "one.tenancy.keys.verify"' in violations


async def test_cli_and_gateway_get_only_what_they_must(connect_as: Connector) -> None:
    cli, gateway = await connect_as("cli"), await connect_as("gateway")
    await cli.subscribe("one.graph.>", cb=_ignore)  # the CLI serves nothing
    await cli.publish("one.events.native.x.y", b"{}")  # nor publishes events
    await gateway.subscribe("one.tenancy.>", cb=_ignore)  # the gateway serves only its own subjects
    await gateway.publish("one.tenancy.keys.invalidate", b"{}")
    await gateway.subscribe("one.agents.steps.>", cb=_ignore)  # it follows run steps (AG-UI streams) ...
    await gateway.subscribe("one.agents.>", cb=_ignore)  # ... and nothing else of the agents'
    await _settle(cli, gateway)
    assert 'subscription to "one.graph.>"' in " ".join(connect_as.violations("cli"))
    assert 'publish to "one.events.native.x.y"' in " ".join(connect_as.violations("cli"))
    assert 'subscription to "one.tenancy.>"' in " ".join(connect_as.violations("gateway"))
    assert 'publish to "one.tenancy.keys.invalidate"' in " ".join(connect_as.violations("gateway"))
    assert 'subscription to "one.agents.>"' in " ".join(connect_as.violations("gateway"))
    assert "one.agents.steps" not in " ".join(connect_as.violations("gateway"))


async def test_only_tenancy_drops_mail_for_the_mailer(connect_as: Connector) -> None:
    """Verification tokens travel on one.notify.email (core NATS): only tenancy may put one there."""
    tenancy, graph, gateway = await connect_as("tenancy"), await connect_as("graph"), await connect_as("gateway")
    await tenancy.publish(subjects.notify("email"), b"{}")
    await graph.publish(subjects.notify("email"), b"{}")
    await gateway.publish(subjects.notify("email"), b"{}")
    await _settle(tenancy, graph, gateway)
    assert not connect_as.violations("tenancy")
    for user in ("graph", "gateway"):
        assert 'publish to "one.notify.email"' in " ".join(connect_as.violations(user)), user


async def test_only_agents_hand_in_app_notices_and_only_tenancy_mail(connect_as: Connector) -> None:
    """Fired reminders go to one.notify.in_app (docs/scheduling.md): agents may publish there, and nowhere else
    under one.notify; the graph may not."""
    agents, graph = await connect_as("agents"), await connect_as("graph")
    await agents.publish(subjects.notify("in_app"), b"{}")
    await agents.publish(subjects.notify("email"), b"{}")
    await graph.publish(subjects.notify("in_app"), b"{}")
    await _settle(agents, graph)
    agents_refused = " ".join(connect_as.violations("agents"))
    assert 'publish to "one.notify.email"' in agents_refused and "one.notify.in_app" not in agents_refused
    assert 'publish to "one.notify.in_app"' in " ".join(connect_as.violations("graph"))


async def test_only_agents_hand_person_email_notices_and_only_tenancy_reads_them(connect_as: Connector) -> None:
    """A fired reminder's email notice (one.notify.person_email): agents send it, tenancy (which knows the
    addresses) reads it; the graph may not forge one, the mailer and the gateway may not read one."""
    agents, tenancy, graph = await connect_as("agents"), await connect_as("tenancy"), await connect_as("graph")
    mailer, gateway = await connect_as("mailer"), await connect_as("gateway")
    received: list = []
    await tenancy.subscribe(subjects.notify("person_email"), queue=subjects.queue_group("tenancy"), cb=_collect(received))
    await mailer.subscribe(subjects.notify("person_email"), cb=_ignore)
    await gateway.subscribe(subjects.notify("person_email"), cb=_ignore)
    await _settle(tenancy, mailer, gateway)
    await graph.publish(subjects.notify("person_email"), b"forged")
    await agents.publish(subjects.notify("person_email"), b"sent")
    await _settle(agents, graph)

    assert [m.data for m in received] == [b"sent"]
    assert not connect_as.violations("agents") and not connect_as.violations("tenancy")
    assert 'publish to "one.notify.person_email"' in " ".join(connect_as.violations("graph"))
    for user in ("mailer", "gateway"):
        assert 'subscription to "one.notify.person_email"' in " ".join(connect_as.violations(user)), user


async def test_the_mailer_reads_the_mail_drop_and_nothing_else(connect_as: Connector) -> None:
    """Its queue group gets tenancy's drops; it may not listen to anything else, nor publish at all."""
    tenancy, mailer = await connect_as("tenancy"), await connect_as("mailer")
    received = []
    await mailer.subscribe(subjects.notify("email"), queue=subjects.queue_group("mailer"), cb=_collect(received))
    await mailer.subscribe("one.notify.>", cb=_ignore)
    await mailer.subscribe("one.tenancy.>", cb=_ignore)
    await mailer.subscribe("_INBOX.>", cb=_ignore)
    await mailer.publish(subjects.notify("email"), b"forged")
    await mailer.publish("one.tenancy.email.verify", b"{}")
    await _settle(mailer)
    await tenancy.publish(subjects.notify("email"), b"dropped")
    await _settle(tenancy)

    assert [m.data for m in received] == [b"dropped"]
    violations = " ".join(connect_as.violations("mailer"))
    for refused in ('subscription to "one.notify.>"', 'subscription to "one.tenancy.>"', 'subscription to "_inbox.>"',
                    'publish to "one.notify.email"', 'publish to "one.tenancy.email.verify"'):
        assert refused in violations, refused


async def test_outbox_publishes_events_and_only_the_eventlog_consumes_them(connect_as: Connector) -> None:
    settings = Settings()
    graph, eventlog, cli = await connect_as("graph"), await connect_as("eventlog"), await connect_as("cli")
    await ensure_events_stream(graph.jetstream(timeout=2), settings)  # every service declares ONE_EVENTS at start

    org = uuid7()
    ack = await graph.jetstream().publish(subjects.event("native", org, "thing_created"), b"{}",
                                          stream=settings.events_stream, headers={"Nats-Msg-Id": str(uuid7())})
    assert ack.stream == "ONE_EVENTS" and ack.seq >= 1

    with pytest.raises(NatsTimeout):  # no JetStream at all for the CLI
        await cli.jetstream(timeout=1).publish(subjects.event("native", org, "forged"), b"{}")
    with pytest.raises(NatsTimeout):  # no consumers for anyone but the eventlog
        await graph.jetstream(timeout=1).pull_subscribe(subjects.ALL_EVENTS, durable="graph-snoop", stream="ONE_EVENTS")
    with pytest.raises(NatsTimeout):  # and no stream deletion, for anyone
        await eventlog.jetstream(timeout=1).delete_stream("ONE_EVENTS")
    with pytest.raises(NatsTimeout):  # the eventlog's consumer has exactly one name
        await eventlog.jetstream(timeout=1).pull_subscribe(subjects.ALL_EVENTS, durable="other", stream="ONE_EVENTS")

    # The very consumer the eventlog's ingest uses (same name and config), so the service test below reuses it.
    config = EventIngest(EventlogSettings(), database_url="postgresql://unused@127.0.0.1/unused").consumer_config()
    ingest = await eventlog.jetstream(timeout=2).pull_subscribe(
        config.filter_subject, durable=config.durable_name, stream="ONE_EVENTS", config=config
    )
    msgs = await ingest.fetch(100, timeout=2)
    assert subjects.event("native", org, "thing_created") in [m.subject for m in msgs]
    for msg in msgs:
        await msg.ack_sync(timeout=2)


# ---- the real services, one process each, each with its own credentials ----------------------


def _spawn(service: str, settings: Settings, nats_url: str, password: str, data_dir) -> subprocess.Popen:
    """`one serve <service>` (or `one mailer`), logged in as itself."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONE_", "OTEL_")) and k not in {"DATABASE_URL", "NATS_URL"}}
    env |= {
        "ONE_DATABASE_URL": settings.database_url,
        "ONE_NATS_URL": nats_url,
        "ONE_NATS_USER": service,
        "ONE_NATS_PASSWORD": password,
        "ONE_DATA_DIR": str(data_dir),
        "ONE_LOG_LEVEL": "WARNING",
        "ONE_TRACE_SAMPLE_RATIO": "0",
    }
    log = open(data_dir / f"{service}.log", "wb")  # noqa: SIM115 (the child owns it)
    arguments = ADAPTERS.get(service, ["serve", service])
    return subprocess.Popen([sys.executable, "-m", "shared.tools.cli", *arguments], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


@pytest.mark.timeout(400)
async def test_every_service_runs_with_its_own_credentials(
    migrated: Settings, secured_nats: str, nats_passwords: dict[str, str], tmp_path, org: AuthContext
) -> None:
    names = (*subjects.SERVICES, *ADAPTERS)
    processes = {name: _spawn(name, migrated, secured_nats, nats_passwords[name], tmp_path) for name in names}
    cli_settings = Settings(nats_url=secured_nats, nats_user="cli", nats_password=nats_passwords["cli"], request_timeout=5)
    try:
        deadline = time.monotonic() + 240  # seven processes starting at once; knowledge loads its model (slow when loaded)
        while True:
            reports = await fetch_health(cli_settings, timeout=1.0)
            unhealthy = {n: r for n, r in reports.items() if not getattr(r, "healthy", False)}
            if not unhealthy:
                break
            dead = {n: p.returncode for n, p in processes.items() if p.poll() is not None}
            if dead or time.monotonic() > deadline:
                logs = {n: (tmp_path / f"{n}.log").read_text()[-2000:] for n in (dead or unhealthy)}
                pytest.fail(f"not healthy: {unhealthy}; exited: {dead}\n{logs}")
            await asyncio.sleep(0.3)

        while not heartbeat_is_fresh(TenancySettings(data_dir=tmp_path)):  # the mailer subscribed with its own user
            assert processes["mailer"].poll() is None and time.monotonic() < deadline, (tmp_path / "mailer.log").read_text()
            await asyncio.sleep(0.2)

        # The event path end to end under permissions: the CLI appends through the eventlog service,
        # which publishes to ONE_EVENTS; its ingest (consumer `eventlog-ingest`) stores it; a query finds it.
        async with await BusClient.connect(cli_settings, name="test-cli") as bus:
            events = Events.over_bus(bus, owner_of(org.org_id, org.actor_id))  # the log checks roles
            appended = await events.publish("payment_event", metadata={"protocol": "x402", "status": "processed", "amount": 1})
            deadline = time.monotonic() + 15
            while not [e for e in (await events.query()).events if e.id == appended.id]:
                assert time.monotonic() < deadline, "the ingest did not store the event"
                await asyncio.sleep(0.1)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                await asyncio.to_thread(process.wait, 20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    for name in names:
        log = (tmp_path / f"{name}.log").read_text()
        assert "Permissions Violation" not in log, f"{name}:\n{log[-3000:]}"
    assert processes["mailer"].returncode == 0
