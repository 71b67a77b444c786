"""One way to call out: `ctx.call` carries the work's auth, protocol and causal chain; background work acts as the service."""

from uuid import UUID

import pytest

from shared.kernel.envelope import AuthContext, Envelope, Protocol
from shared.kernel.ids import uuid7
from shared.runtime.client import BusClient
from shared.runtime.context import service_actor_id
from shared.runtime.service import ServiceRuntime
from tests.probe.app import RELAY, SEEN, NoteList, Relayed, Seen

pytestmark = pytest.mark.usefixtures("services")


async def test_a_call_carries_the_callers_auth_protocol_and_chain(bus: BusClient, org: AuthContext) -> None:
    correlation = uuid7()
    relayed: Relayed = await bus.request(RELAY, NoteList(), org, protocol=Protocol.A2A, correlation_id=correlation)
    caller, callee = relayed.caller, relayed.callee
    assert (callee.org_id, callee.actor_id) == (org.org_id, org.actor_id)
    assert callee.protocol is Protocol.A2A, "the protocol of the work goes along"
    assert callee.correlation_id == correlation, "the chain keeps the request's correlation"
    assert callee.causation_id == caller.envelope_id, "the call was caused by the relay's own envelope"


async def test_a_call_without_a_correlation_correlates_with_the_request(bus: BusClient, org: AuthContext) -> None:
    relayed: Relayed = await bus.request(RELAY, NoteList(), org)
    assert relayed.callee.correlation_id == relayed.caller.envelope_id


async def test_background_work_acts_as_the_service_with_its_grants(services: dict[str, ServiceRuntime]) -> None:
    probe, org_id, person = services["probe"], uuid7(), uuid7()
    cause = Envelope(type="note_created", org_id=org_id, actor_id=person, correlation_id=uuid7())

    alone: Seen = await probe.background(org_id, cause=cause).call(SEEN, NoteList())
    assert alone.actor_id == service_actor_id("probe") and alone.role == "service:probe"
    assert alone.permissions == ["allow:things:read:0"]
    assert (alone.org_id, alone.correlation_id) == (org_id, cause.correlation_id)
    assert alone.causation_id is not None and alone.causation_id != cause.id, "caused by the background work itself"

    for_someone: Seen = await probe.background(org_id, on_behalf_of=person, correlation_id=cause.id).call(SEEN, NoteList())
    assert for_someone.actor_id == person and for_someone.role == "service:probe", "the person acts, with the service's grants"
    assert for_someone.correlation_id == cause.id


def test_a_service_is_the_same_actor_in_every_replica() -> None:
    assert service_actor_id("knowledge") == service_actor_id("knowledge") != service_actor_id("graph")
    assert isinstance(service_actor_id("graph"), UUID)
