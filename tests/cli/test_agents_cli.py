"""`one agents create|list|show|deploy|chat` as a person types them: a subprocess against the session's real stack,
over the bus and over HTTP (`ONE_URL`, the gateway served here), with the scripted OpenAI-wire model.

`chat` is read line by line while it runs: the tool the agent called is on the terminal while the model's
next completion is still held, and the answer follows, whole and in order, then the model and the run's id.
"""

import asyncio
import json
import re

import pytest

from shared.kernel.settings import Settings
from tests.agents.scripted_model import ScriptedModel
from tests.cli.conftest import ONE, Cli, Ran, cli_env, one, one_line_error  # noqa: F401 (fixture)
from tests.tenancy.conftest import Account, owner, unique  # noqa: F401 (fixtures)

ANSWER = "the answer arrives word by word"
UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture(params=["bus", "http"])
def transport(request: pytest.FixtureRequest, gateway: str) -> dict[str, str]:  # noqa: F811
    """Extra environment: nothing (the bus of the stack), or `ONE_URL` (every command goes through the gateway)."""
    return {} if request.param == "bus" else {"ONE_URL": gateway}


async def test_create_list_show_deploy_and_their_errors(
    one: Cli, transport: dict[str, str], model_server: ScriptedModel  # noqa: F811
) -> None:
    model, _ = model_server.script({"text": "ok"})
    slug = unique("agent")
    created = (await one("agents", "create", slug, "--name", "Helper", "--type", "service_agent", "--model", model,
                         "--tool", "thing_query", "--json", **transport)).json()
    assert (created["slug"], created["development"]["model"], created["production"]) == (slug, model, None)
    assert created["development"]["tools"] == ["thing_query"]

    listed = (await one("agents", "list", **transport)).ok()
    assert slug in listed and "service_agent" in listed
    assert all(len(line) <= 80 for line in listed.splitlines())
    assert slug in {a["slug"] for a in (await one("agents", "list", "--json", **transport)).json()["agents"]}
    shown = (await one("agents", "show", slug, **transport)).ok()
    assert created["id"] in shown and "not deployed" in shown and "thing_query" in shown
    assert (await one("agents", "show", slug, "--json", **transport)).json()["id"] == created["id"]

    deployed = (await one("agents", "deploy", slug, **transport)).ok()
    assert f"deployed {slug}: production v1" in deployed
    assert (await one("agents", "show", slug, "--json", **transport)).json()["production"]["version"] == 1

    one_line_error(await one("agents", "show", unique("nobody"), **transport), 5, "agent_not_found")
    one_line_error(await one("agents", "deploy", unique("nobody"), **transport), 5, "agent_not_found")
    one_line_error(await one("agents", "create", slug, "--model", model, **transport), 7, "agent_slug_taken")
    one_line_error(await one("agents", "create", "Not A Slug", **transport), 6, "slug")
    one_line_error(await one("agents", "create", unique("a"), "--config", "{not json", **transport), 2, "--config")


async def _agent(one: Cli, model: str, transport: dict[str, str], *options: str) -> str:  # noqa: F811
    slug = unique("agent")
    (await one("agents", "create", slug, "--model", model, *options, "--json", **transport)).json()
    return slug


async def test_chat_streams_the_tools_and_the_answer_as_they_come_then_the_model_and_run(
    one: Cli, transport: dict[str, str], migrated: Settings, owner: Account, model_server: ScriptedModel  # noqa: F811
) -> None:
    model, script = model_server.script({"tool_calls": [("thing_query", {"limit": 1})]}, {"text": ANSWER})
    script.gates[2] = release = asyncio.Event()
    slug = await _agent(one, model, transport, "--tool", "thing_query", "--deploy")

    process = await asyncio.create_subprocess_exec(
        *ONE, "agents", "chat", slug, "Look around", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=cli_env(migrated, owner.key, **transport))
    try:
        before: list[str] = []
        while not any(line.startswith("< thing_query") for line in before):  # the model's second answer is held
            line = await asyncio.wait_for(process.stdout.readline(), 120)  # type: ignore[union-attr]
            assert line, f"the chat ended early: {before} {(await process.stderr.read()).decode()}"  # type: ignore[union-attr]
            before.append(line.decode())
        assert before[0].startswith("> thing_query") and '"limit":1' in before[0], before
        assert len(script.requests) == 2 and not any(ANSWER in line for line in before)  # the run is not done yet
    finally:
        release.set()
    rest, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    after = rest.decode().splitlines()
    assert after[0] == ANSWER, after  # every delta, in order, on one line as it arrived
    ended = re.fullmatch(rf"-- model (\S+), run ({UUID_RE})", after[-1])
    assert ended, after
    run = (await one("agents", "chat", slug, "Again", "--json", **transport)).json()["run"]  # waited for, as JSON
    assert (run["answer"], run["model"]) == (ANSWER, ended[1]) and run["id"] != ended[2]
    assert ended[1].endswith(model.removeprefix("openai:"))


async def test_chat_errors_are_one_line(
    one: Cli, transport: dict[str, str], model_server: ScriptedModel  # noqa: F811
) -> None:
    model, _ = model_server.script({"tool_calls": [("thing_query", {"limit": 1})]})  # asks for tools forever
    one_line_error(await one("agents", "chat", unique("nobody"), "Hi", **transport), 5, "agent_not_found")
    undeployed = await _agent(one, model, transport)
    one_line_error(await one("agents", "chat", undeployed, "Hi", **transport), 7, "agent_not_deployed")
    capped = await _agent(one, model, transport, "--tool", "thing_query", "--config", '{"max_iterations": 1}',
                          "--deploy")
    failed: Ran = await one("agents", "chat", capped, "Loop", **transport)
    one_line_error(failed, 7, "max_iterations", "failed")
    assert "> thing_query" in failed.out
    assert json.loads((await one("agents", "list", "--json", **transport)).out)["agents"]
