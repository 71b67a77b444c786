"""A run reserves its inference units from the org's quota when it starts and gives back what it did not use
when it ends (services/agents/inference.py): the quota counts completions, whatever was reserved."""

import pytest

from shared.contracts.tenancy import QUOTA_SET, QUOTA_USAGE
from shared.runtime.client import BusClient
from shared.kernel.errors import QuotaExceeded
from tests.agents.agent_fixtures import (  # noqa: F401 (fixtures)
    chat,
    make_agent,
    owner,
    wait_events,
)
from tests.agents.scripted_model import ScriptedModel
from tests.tenancy.conftest import Account


async def inference_used(bus: BusClient, owner: Account) -> int:
    return {q.metric: q.used for q in (await bus.request(QUOTA_USAGE, {}, owner.ctx)).quotas}["inference"]


async def test_a_run_is_charged_its_completions_and_the_rest_of_its_reservation_is_given_back(
    bus: BusClient, owner: Account, platform: Account, model_server: ScriptedModel  # noqa: F811
) -> None:
    await bus.request(QUOTA_SET, {"org_id": str(owner.org_id), "metric": "inference", "limit": 20}, platform.ctx)
    model, script = model_server.script({"tool_calls": [("thing_query", {"limit": 1})]}, {"text": "done"})
    agent = await make_agent(bus, owner, model, tools=["thing_query"], max_iterations=8)
    run = (await chat(bus, owner, agent.slug, wait=True)).run
    assert run.status == "completed" and run.iterations == 2 == len(script.requests), run.error
    assert await inference_used(bus, owner) == 2  # 8 reserved, 6 given back


async def test_a_block_that_does_not_fit_reserves_what_is_left_then_the_run_stops_at_the_quota(
    bus: BusClient, owner: Account, platform: Account, model_server: ScriptedModel  # noqa: F811
) -> None:
    await bus.request(QUOTA_SET, {"org_id": str(owner.org_id), "metric": "inference", "limit": 3}, platform.ctx)
    model, script = model_server.script(*({"tool_calls": [("thing_query", {"limit": 1})]} for _ in range(6)))
    agent = await make_agent(bus, owner, model, tools=["thing_query"])
    run = (await chat(bus, owner, agent.slug, wait=True)).run
    assert run.status == "failed" and run.error["code"] == "quota_exceeded", run.error
    assert len(script.requests) == 3 and await inference_used(bus, owner) == 3


async def test_a_failed_run_gives_back_what_it_did_not_use(
    bus: BusClient, owner: Account, platform: Account, model_server: ScriptedModel  # noqa: F811
) -> None:
    await bus.request(QUOTA_SET, {"org_id": str(owner.org_id), "metric": "inference", "limit": 20}, platform.ctx)
    model, script = model_server.script(*({"tool_calls": [("thing_query", {"limit": 1})]} for _ in range(3)))
    agent = await make_agent(bus, owner, model, tools=["thing_query"], max_iterations=3)
    run = (await chat(bus, owner, agent.slug, wait=True)).run  # still asking for tools at its limit: failed
    assert run.status == "failed" and run.iterations == 3 == len(script.requests), run.error
    assert await inference_used(bus, owner) == 3


async def test_a_run_offered_no_tool_reserves_the_one_unit_it_can_use(
    bus: BusClient, owner: Account, platform: Account, model_server: ScriptedModel  # noqa: F811
) -> None:
    """One unit left: the tool-less run asks for one (no block refused and logged, nothing to give back)."""
    await bus.request(QUOTA_SET, {"org_id": str(owner.org_id), "metric": "inference", "limit": 1}, platform.ctx)
    model, _ = model_server.script({"text": "done"})
    agent = await make_agent(bus, owner, model, max_iterations=8)
    run = (await chat(bus, owner, agent.slug, wait=True)).run
    assert run.status == "completed" and run.iterations == 1, run.error
    assert await inference_used(bus, owner) == 1
    with pytest.raises(QuotaExceeded):  # the quota is spent: this refusal is the only one logged
        await chat(bus, owner, agent.slug, wait=True)
    [refused] = await wait_events(bus, owner, ["inference_quota_exceeded"], 1)
    assert refused.metadata["requested"] == 1
