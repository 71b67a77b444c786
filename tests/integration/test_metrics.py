"""Prometheus metrics: every answered request is counted by service, type and outcome, and served
over HTTP with the process's other metrics."""

import httpx
import pytest
from nats.aio.client import Client as NatsClient
from prometheus_client import REGISTRY

from shared.kernel.envelope import AuthContext, Envelope
from shared.kernel.errors import Internal, InvalidRequest, UnknownMessageType
from shared.kernel.settings import Settings
from shared.runtime import metrics
from shared.runtime.client import BusClient
from shared.runtime.metrics import metrics_served
from shared.tools.embedded import free_port
from shared.tools.stack import Supervisor
from tests.metrics_page import request_counts
from tests.probe.app import CRASH, ECHO, Echo

pytestmark = pytest.mark.usefixtures("services")

Counts = dict[tuple[str, str], float]


async def scrape(url: str) -> tuple[Counts, str]:
    """The probe service's request counts by (type, outcome), and the whole page."""
    async with httpx.AsyncClient() as http:
        page = (await http.get(url)).text
    return {(t, outcome): n for (service, t, outcome), n in request_counts(page).items() if service == "probe"}, page


async def test_answers_are_counted_by_type_and_outcome_and_served(
    bus: BusClient, nc: NatsClient, org: AuthContext, settings: Settings
) -> None:
    with metrics_served(settings.model_copy(update={"metrics_port": free_port(), "metrics_host": "127.0.0.1"})) as port:
        url = f"http://127.0.0.1:{port}/metrics"
        before, _ = await scrape(url)
        for n in range(3):
            await bus.request(ECHO, Echo(text="x", n=n), org)
        with pytest.raises(InvalidRequest):
            await bus.request(ECHO, {"text": ["not", "a", "string"]}, org)
        with pytest.raises(Internal):
            await bus.request(CRASH, {}, org)
        made_up = Envelope(type="probe.made-up-by-the-caller", org_id=org.org_id, actor_id=org.actor_id)
        await nc.request(ECHO.subject, made_up.to_bytes(), timeout=5)
        after, page = await scrape(url)

    def added(key: tuple[str, str]) -> float:
        return after.get(key, 0) - before.get(key, 0)

    assert added(("probe.echo", "ok")) == 3
    assert added(("probe.echo", "invalid")) == 1
    assert added(("probe.crash", "internal")) == 1
    assert added(("unknown", UnknownMessageType.code)) == 1  # never the caller's string
    assert "made-up" not in page
    assert 'le="0.001"' in page and "one_request_duration_seconds_sum" in page
    with pytest.raises(httpx.ConnectError):  # stopped with the block
        await scrape(url)


def test_nothing_is_served_without_a_port(settings: Settings) -> None:
    with metrics_served(settings.model_copy(update={"metrics_port": 0})) as port:
        assert port is None


def test_one_up_gives_each_child_its_own_metrics_port(settings: Settings) -> None:
    ports = Supervisor(settings.model_copy(update={"metrics_port": 9500})).metrics_ports()
    assert ports["tenancy"] == 9500 and ports["mailer"] == 9500 + len(ports) - 1
    assert sorted(ports.values()) == list(range(9500, 9500 + len(ports)))
    assert Supervisor(settings.model_copy(update={"metrics_port": 0})).metrics_ports() == {}


def test_a_request_lands_in_every_bucket_at_or_above_its_time() -> None:
    metrics.observe("bucket-check", "probe.echo", "ok", 0.0007)
    metrics.observe("bucket-check", "probe.echo", "ok", 3.0)
    [family] = [f for f in REGISTRY.collect() if f.name == "one_request_duration_seconds"]
    samples = {(s.name, s.labels.get("le")): s.value for s in family.samples if s.labels["service"] == "bucket-check"}
    assert samples[("one_request_duration_seconds_bucket", "0.0005")] == 0
    assert samples[("one_request_duration_seconds_bucket", "0.001")] == 1
    assert samples[("one_request_duration_seconds_bucket", "2.5")] == 1
    assert samples[("one_request_duration_seconds_bucket", "5.0")] == 2
    assert samples[("one_request_duration_seconds_bucket", "+Inf")] == 2
    assert samples[("one_request_duration_seconds_count", None)] == 2
    assert samples[("one_request_duration_seconds_sum", None)] == pytest.approx(3.0007)
