"""A run whose process is SIGKILLed mid tool loop is taken over by another replica and resumed from its steps.

The killed replica had run the first iteration (a `thing_create` call and its stored result) and was waiting
for the model's second answer. The session's replica finds the lease expired, resumes from the stored steps
(the thing is not created twice), and finishes the run.
"""

import asyncio
import json
import signal
import sys

import pytest

from shared.contracts.agents import RUN_GET, RUN_STEPS
from shared.contracts.graph import THING_QUERY
from shared.kernel.settings import Settings
from shared.runtime.client import BusClient
from tests.agents.agent_fixtures import make_agent, owner  # noqa: F401 (fixtures)
from tests.agents.scripted_model import ScriptedModel
from tests.tenancy.conftest import Account


@pytest.mark.timeout(300)
async def test_a_run_killed_mid_loop_is_resumed_by_another_replica(
    bus: BusClient, owner: Account, migrated: Settings, model_server: ScriptedModel  # noqa: F811
) -> None:
    model, script = model_server.script(
        {"tool_calls": [("thing_create", {"type": "blog_post", "name": "Once only", "status": "active"})]},
        {"text": "the killed replica never gets this"},
        {"text": "finished after the takeover"})
    never = asyncio.Event()
    script.gates[2] = never
    agent = await make_agent(bus, owner, model, tools=["thing_create"])
    auth = json.dumps({"org_id": str(owner.org_id), "actor_id": str(owner.person_id), "role": owner.ctx.role,
                       "permissions": list(owner.ctx.permissions)})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.agents.run_until_killed", migrated.database_url, migrated.nats_url,
        model_server.url, auth, agent.slug, stdout=asyncio.subprocess.PIPE)
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 120)).decode().split()
        assert line[0] == "run", line
        run_id = line[1]
        while len(script.requests) < 2:  # the second completion is held: the first iteration's steps are stored
            await asyncio.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        assert await process.wait() == -signal.SIGKILL
    try:
        deadline = asyncio.get_running_loop().time() + 90
        run = await bus.request(RUN_GET, {"id": run_id}, owner.ctx)
        while run.status == "running":
            assert asyncio.get_running_loop().time() < deadline, "the run was never taken over"
            await asyncio.sleep(0.5)
            run = await bus.request(RUN_GET, {"id": run_id}, owner.ctx)
    finally:
        never.set()
    assert run.status == "completed" and run.answer == "finished after the takeover", run.error
    assert run.resumed == 1
    kinds = [s.kind.value for s in (await bus.request(RUN_STEPS, {"run_id": run_id}, owner.ctx)).steps]
    assert kinds.count("tool_result") == 1 and "resumed" in kinds and kinds[-1] == "run_finished"
    assert [t.name for t in (await bus.request(THING_QUERY, {"type": "blog_post"}, owner.ctx)).things] == ["Once only"]
