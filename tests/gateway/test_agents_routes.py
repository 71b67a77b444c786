"""The agents REST routes over real HTTP: agents and configs, prompts, conversations, chat as JSON, runs, executions.

The model is the scripted OpenAI-wire server (`tests.agents.scripted_model`, real HTTP); every answer here
comes from the agents service through the bus, so what is asserted is what the service stored.
"""

from typing import Any

from tests.agents.scripted_model import ScriptedModel
from tests.gateway.conftest import Caller, assert_problem
from tests.tenancy.conftest import unique


async def new_agent(caller: Caller, model: str, *, deploy: bool = True, **config: Any) -> dict[str, Any]:
    slug = unique("agent")
    created = await caller.call("POST", "/v1/agents", {"slug": slug, "name": "Helper", "type": "service_agent",
                                                        "config": {"model": model, **config}})
    assert created.status_code == 201, created.text
    if deploy:
        deployed = await caller.call("POST", f"/v1/agents/{slug}/deploy")
        assert deployed.status_code == 200, deployed.text
        return deployed.json()
    return created.json()


async def test_an_agent_is_created_configured_deployed_and_archived(alice: Caller, model_server: ScriptedModel) -> None:  # noqa: F811
    model, _ = model_server.script({"text": "ok"})
    agent = await new_agent(alice, model, deploy=False, system_prompt="Be brief.")
    slug = agent["slug"]
    assert agent["development"]["version"] == 1 and agent["production"] is None and agent["type"] == "service_agent"

    assert (await alice.call("GET", f"/v1/agents/{slug}")).json()["id"] == agent["id"]
    listed = (await alice.call("GET", "/v1/agents")).json()["agents"]
    assert slug in {a["slug"] for a in listed}

    renamed = await alice.call("PATCH", f"/v1/agents/{slug}", {"name": "Renamed", "description": "Answers."})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Renamed", renamed.text
    configured = await alice.call("PUT", f"/v1/agents/{slug}/config",
                                  {"config": {"model": model, "system_prompt": "Be briefer."}, "expected_version": 1})
    assert configured.status_code == 200 and configured.json()["development"]["version"] == 2, configured.text
    stale = await alice.call("PUT", f"/v1/agents/{slug}/config", {"config": {"model": model}, "expected_version": 1})
    assert_problem(stale, 409, "config_version_conflict")

    not_deployed = await alice.call("POST", f"/v1/agents/{slug}/chat", {"message": "Hi"})
    assert_problem(not_deployed, 409, "agent_not_deployed")
    deployed = (await alice.call("POST", f"/v1/agents/{slug}/deploy")).json()
    assert deployed["production"]["system_prompt"] == "Be briefer."
    versions = (await alice.call("GET", f"/v1/agents/{slug}/versions", environment="development")).json()["configs"]
    assert sorted(c["version"] for c in versions) == [1, 2]

    archived = await alice.call("POST", f"/v1/agents/{slug}/archive")
    assert archived.status_code == 200 and archived.json()["status"] == "archived", archived.text
    assert_problem(await alice.call("POST", f"/v1/agents/{slug}/chat", {"message": "Hi"}), 409, "agent_archived")
    assert slug not in {a["slug"] for a in (await alice.call("GET", "/v1/agents")).json()["agents"]}


async def test_bad_agent_input_is_a_problem(alice: Caller) -> None:
    assert_problem(await alice.call("POST", "/v1/agents", {"slug": "Not A Slug", "name": "x"}), 422)
    assert_problem(await alice.call("POST", "/v1/agents", {"slug": unique("a"), "name": "x",
                                                           "config": {"tools": ["rm_rf"]}}), 422)
    assert_problem(await alice.call("GET", f"/v1/agents/{unique('missing')}"), 404, "agent_not_found")
    assert_problem(await alice.call("POST", f"/v1/agents/{unique('missing')}/chat", {"message": "Hi"}), 404,
                   "agent_not_found")
    assert_problem(await alice.call("POST", f"/v1/agents/{unique('missing')}/chat", {"message": ""}), 422)
    assert_problem(await alice.call("POST", f"/v1/agents/{unique('missing')}/chat", {"message": "x", "wait": False}),
                   422)
    assert_problem(await alice.call("GET", "/v1/runs/not-a-uuid"), 422)


async def test_prompts_are_written_rendered_and_attached(alice: Caller, model_server: ScriptedModel) -> None:  # noqa: F811
    model, _ = model_server.script({"text": "ok"})
    agent = await new_agent(alice, model)
    created = await alice.call("POST", "/v1/prompts", {"name": "Greeting", "step": "hook",
                                                       "template": "Greet {{name}} from {{city}}."})
    assert created.status_code == 201, created.text
    prompt = created.json()
    assert sorted(prompt["variables"]) == ["city", "name"]
    rendered = (await alice.call("POST", f"/v1/prompts/{prompt['id']}/render", {"variables": {"name": "Ada"}})).json()
    assert rendered["text"] == "Greet Ada from ." and rendered["missing"] == ["city"]
    patched = await alice.call("PATCH", f"/v1/prompts/{prompt['id']}", {"template": "Hello {{name}}."})
    assert patched.status_code == 200 and patched.json()["variables"] == ["name"], patched.text
    assert (await alice.call("GET", f"/v1/prompts/{prompt['id']}")).json()["template"] == "Hello {{name}}."
    assert prompt["id"] in {p["id"] for p in (await alice.call("GET", "/v1/prompts", step="hook")).json()["prompts"]}

    attached = await alice.call("POST", f"/v1/agents/{agent['slug']}/prompts", {"prompt_id": prompt["id"]})
    assert attached.status_code == 200 and attached.json()["prompts"] == [prompt["id"]], attached.text
    detached = await alice.call("DELETE", f"/v1/agents/{agent['slug']}/prompts/{prompt['id']}")
    assert detached.status_code == 200 and detached.json()["prompts"] == [], detached.text
    archived = await alice.call("POST", f"/v1/prompts/{prompt['id']}/archive")
    assert archived.status_code == 200 and archived.json()["status"] == "archived", archived.text


async def test_conversations_participants_and_messages(alice: Caller, model_server: ScriptedModel) -> None:  # noqa: F811
    model, _ = model_server.script({"text": "ok"})
    agent = await new_agent(alice, model)
    external = unique("slack-thread")
    created = await alice.call("POST", "/v1/conversations", {"title": "Support", "external_thread_id": external,
                                                             "tags": ["support"]})
    assert created.status_code == 201, created.text
    conversation = created.json()
    by_external = await alice.call("GET", f"/v1/conversations/external/{external}")
    assert by_external.json()["id"] == conversation["id"], by_external.text

    added = await alice.call("POST", f"/v1/conversations/{conversation['id']}/participants",
                             {"kind": "agent", "agent_slug": agent["slug"]})
    assert added.status_code == 201 and added.json()["member_id"] == agent["id"], added.text
    written = await alice.call("POST", f"/v1/conversations/{conversation['id']}/messages",
                               {"content": "Where is my order?", "step": "engage", "tags": ["order"]})
    assert written.status_code == 201 and written.json()["seq"] == 1, written.text
    page = (await alice.call("GET", f"/v1/conversations/{conversation['id']}/messages")).json()
    assert [m["content"] for m in page["messages"]] == ["Where is my order?"]
    removed = await alice.call("DELETE", f"/v1/conversations/{conversation['id']}/participants",
                               kind="agent", member_id=agent["id"])
    assert removed.status_code == 200 and removed.json()["status"] == "removed", removed.text

    closed = await alice.call("PATCH", f"/v1/conversations/{conversation['id']}", {"status": "closed"})
    assert closed.status_code == 200 and closed.json()["status"] == "closed", closed.text
    listed = (await alice.call("GET", "/v1/conversations", status="closed")).json()["conversations"]
    assert conversation["id"] in {c["id"] for c in listed}
    refused = await alice.call("POST", f"/v1/agents/{agent['slug']}/chat", {"message": "Hi", "threadId": conversation["id"]})
    assert_problem(refused, 409, "conversation_closed")


async def test_chat_answers_json_with_the_reply_run_thread_and_model(alice: Caller, model_server: ScriptedModel) -> None:  # noqa: F811
    model, script = model_server.script({"text": "Your order ships Monday."}, {"text": "It is order 7."})
    agent = await new_agent(alice, model)
    slug, external = agent["slug"], unique("ext")

    answered = await alice.call("POST", f"/v1/agents/{slug}/chat", {"message": "When?", "externalThreadId": external})
    assert answered.status_code == 200, answered.text
    body = answered.json()
    assert body["reply"] == "Your order ships Monday." and body["model"] == model
    assert body["run"]["status"] == "completed" and body["run_id"] == body["run"]["id"]
    thread = body["thread_id"]
    assert (await alice.call("GET", f"/v1/conversations/external/{external}")).json()["id"] == thread

    again = (await alice.call("POST", f"/v1/agents/{slug}/chat", {"message": "Which order?", "threadId": thread})).json()
    assert again["thread_id"] == thread and again["reply"] == "It is order 7."
    assert "When?" in str(script.requests[-1]["messages"]), "the thread's history is in the second run's context"
    messages = (await alice.call("GET", f"/v1/conversations/{thread}/messages")).json()["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "When?"), ("assistant", "Your order ships Monday."), ("user", "Which order?"),
        ("assistant", "It is order 7.")]

    run = (await alice.call("GET", f"/v1/runs/{again['run_id']}")).json()
    assert run["answer"] == "It is order 7." and run["conversation_id"] == thread
    steps = (await alice.call("GET", f"/v1/runs/{again['run_id']}/steps")).json()["steps"]
    assert steps[0]["kind"] == "run_started" and steps[-1]["kind"] == "run_finished"
    assert [s["seq"] for s in steps] == list(range(1, len(steps) + 1))
    later = (await alice.call("GET", f"/v1/runs/{again['run_id']}/steps", after_seq=steps[-2]["seq"])).json()["steps"]
    assert [s["kind"] for s in later] == ["run_finished"]
    runs = (await alice.call("GET", "/v1/runs", agent=slug)).json()["runs"]
    assert {r["id"] for r in runs} == {body["run_id"], again["run_id"]}

    executions = (await alice.call("GET", "/v1/executions", agent=slug)).json()["executions"]
    assert {e["run_id"] for e in executions} == {body["run_id"], again["run_id"]}
    assert all(e["model"] == model and e["input_tokens"] > 0 and e["output_tokens"] > 0 for e in executions)
    stats = (await alice.call("GET", "/v1/executions/stats")).json()
    assert stats["by_model"][model]["runs"] == 2 and stats["by_agent"][slug]["runs"] == 2
