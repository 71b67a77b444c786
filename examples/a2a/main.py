"""Another platform's A2A agent as an external agent of your org, and (with a tool-calling model) a delegation to it.

The "other platform" is a tiny A2A v1.0 agent served here with the a2a-sdk's own server parts, on a local port,
demanding an API key. The platform fetches its agent card, checks it and keeps it with the key (never shown
back); an agent whose `delegates_to` names it gets the tool `a2a__<slug>` and sends it tasks through the
official a2a-sdk client. Delegating needs a model that calls tools: set `ONE_EXAMPLE_MODEL` (e.g.
`openai:gpt-4o-mini`); the offline default model calls none.
"""

import asyncio
import os
import uuid

import uvicorn
from a2a.helpers import get_message_text, new_task_from_user_message, new_text_part
from a2a.server.agent_execution import AgentExecutor
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks.inmemory_task_store import InMemoryTaskStore
from a2a.server.tasks.task_updater import TaskUpdater
from a2a.types import a2a_pb2 as a2a
from starlette.applications import Starlette
from starlette.responses import JSONResponse

from shared.contracts.agents import EXTERNAL_ADD, EXTERNAL_ARCHIVE, EXTERNAL_LIST
from shared.tools.sdk import One

REMOTE_KEY = f"other-platform-{uuid.uuid4().hex}"


class Greeter(AgentExecutor):
    """The other platform's agent: answers every task with a greeting, streamed as an artifact."""

    async def execute(self, context, queue) -> None:
        task = context.current_task or new_task_from_user_message(context.message)
        await queue.enqueue_event(task)
        updater = TaskUpdater(queue, task.id, task.context_id)
        asked = get_message_text(context.message)
        await updater.add_artifact([new_text_part(f"Hello from elsewhere! You asked: {asked}")])
        await updater.complete()

    async def cancel(self, context, queue) -> None:
        return None


async def serve_remote_agent() -> tuple[uvicorn.Server, str]:
    server = uvicorn.Server(uvicorn.Config(None, host="127.0.0.1", port=0, log_level="warning"))
    holder = {}

    async def app(scope, receive, send) -> None:  # the card is public, the rest needs the key
        key = dict(scope.get("headers") or []).get(b"x-api-key")
        if scope["type"] == "http" and "/.well-known/" not in scope["path"] and key != REMOTE_KEY.encode():
            return await JSONResponse({"error": "unauthorized"}, status_code=401)(scope, receive, send)
        await holder["app"](scope, receive, send)

    server.config.app = app
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    card = a2a.AgentCard(
        name="Elsewhere Greeter", description="Greets whoever asks.", version="1.0",
        supported_interfaces=[a2a.AgentInterface(url=f"{url}/", protocol_binding="JSONRPC", protocol_version="1.0")],
        provider=a2a.AgentProvider(organization="Elsewhere Inc.", url="https://elsewhere.example"),
        capabilities=a2a.AgentCapabilities(streaming=True), default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[a2a.AgentSkill(id="greet", name="Greet", description="A friendly hello.", tags=["hello"])],
        security_schemes={"key": a2a.SecurityScheme(api_key_security_scheme=a2a.APIKeySecurityScheme(
            location="header", name="X-API-Key"))},
        security_requirements=[a2a.SecurityRequirement(schemes={"key": a2a.StringList()})])
    handler = DefaultRequestHandler(agent_executor=Greeter(), task_store=InMemoryTaskStore(), agent_card=card)
    holder["app"] = Starlette(routes=[*create_agent_card_routes(card), *create_jsonrpc_routes(handler, "/")])
    server.task = task  # type: ignore[attr-defined]
    return server, url


async def main() -> None:
    server, url = await serve_remote_agent()
    try:
        async with await One.connect() as one:
            slug = f"greeter-{uuid.uuid4().hex[:8]}"
            remote = await one.request(EXTERNAL_ADD, {"card_url": url, "slug": slug, "api_key": REMOTE_KEY})
            print(f"external agent {remote.slug}: {remote.name} of {remote.provider}, "
                  f"streaming={remote.streaming}, skills={[s.name for s in remote.skills]}, "
                  f"key {remote.credentials_hint}")
            listed = await one.request(EXTERNAL_LIST, {})
            assert remote.id in [e.id for e in listed.external_agents] and REMOTE_KEY not in listed.model_dump_json()

            model = os.environ.get("ONE_EXAMPLE_MODEL")
            if model:
                agent = f"liaison-{uuid.uuid4().hex[:8]}"
                await one.agents.create(agent, "Liaison", type="service_agent", config={
                    "model": model, "delegates_to": [slug],
                    "system_prompt": f"Ask the external agent (tool a2a__{slug}) and repeat its answer."})
                await one.agents.deploy(agent)
                reply = await one.agents.chat(agent, "Please say hello to the other platform.")
                print(f"liaison> {reply.run.answer}")
            else:
                print(f"set ONE_EXAMPLE_MODEL (a model that calls tools) to watch an agent delegate to {slug}")
            await one.request(EXTERNAL_ARCHIVE, {"slug": slug})
            print(f"removed {slug}")
    finally:
        server.should_exit = True
        await server.task  # type: ignore[attr-defined]


if __name__ == "__main__":
    asyncio.run(main())
