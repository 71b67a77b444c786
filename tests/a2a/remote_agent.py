"""A bare A2A agent of "another platform": a2a-sdk's own server parts (request handler, in-memory task store,
JSON-RPC + REST routes, card route) around a small executor, on a real local port (uvicorn), demanding an API key.

What the executor does depends on the task's text: `hi` is answered with a message (no task), `fail` ends the
task failed (with a reason), `ask` asks for input (input-required), `slow` waits 5 s, anything else is answered
`echo: <text>` as an artifact sent in two chunks (the second appended). Every message received and the API key it came with are kept for the test.
"""

import asyncio
from typing import Any

from a2a.helpers import get_message_text, new_task_from_user_message, new_text_message, new_text_part
from a2a.server.agent_execution import AgentExecutor
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes, create_rest_routes
from a2a.server.tasks.inmemory_task_store import InMemoryTaskStore
from a2a.server.tasks.task_updater import TaskUpdater
from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentProvider,
    AgentSkill,
    APIKeySecurityScheme,
    SecurityRequirement,
    SecurityScheme,
    StringList,
)
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.agents.local_server import LocalServer

API_KEY = "remote-platform-key-0123456789"
PLATFORM = "Elsewhere Labs"


class _Executor(AgentExecutor):
    def __init__(self, remote: "RemoteAgent") -> None:
        self.remote = remote

    async def execute(self, context: Any, queue: Any) -> None:
        text = get_message_text(context.message)
        self.remote.received.append(text)
        if text == "hi":  # a direct reply: a message, no task
            await queue.enqueue_event(new_text_message("hi back", context_id=context.context_id))
            return
        task = context.current_task or new_task_from_user_message(context.message)
        await queue.enqueue_event(task)
        updater = TaskUpdater(queue, task.id, task.context_id)
        await updater.start_work()
        if text == "fail":
            await updater.failed(updater.new_agent_message([new_text_part("the remote could not do it")]))
        elif text == "ask":
            await updater.requires_input(updater.new_agent_message([new_text_part("which market do you mean?")]))
        else:
            if text == "slow":
                await asyncio.sleep(5)
            artifact_id = "answer-1"
            await updater.add_artifact([new_text_part("echo: ")], artifact_id=artifact_id, name="answer")
            await updater.add_artifact([new_text_part(text)], artifact_id=artifact_id, name="answer", append=True,
                                       last_chunk=True)
            await updater.complete()

    async def cancel(self, context: Any, queue: Any) -> None:
        return None


class RemoteAgent:
    def __init__(self, *, streaming: bool, name: str = "Market Researcher") -> None:
        self.streaming, self.name = streaming, name
        self.received: list[str] = []
        self.keys: list[str | None] = []
        self.server: LocalServer | None = None
        self.url = ""

    def card(self, url: str) -> AgentCard:
        return AgentCard(
            name=self.name, description="Researches markets and answers in one line.", version="2.1.0",
            supported_interfaces=[AgentInterface(url=f"{url}/", protocol_binding="JSONRPC", protocol_version="1.0"),
                                  AgentInterface(url=url, protocol_binding="HTTP+JSON", protocol_version="1.0")],
            provider=AgentProvider(organization=PLATFORM, url="https://elsewhere.example"),
            capabilities=AgentCapabilities(streaming=self.streaming),
            default_input_modes=["text/plain"], default_output_modes=["text/plain"],
            skills=[AgentSkill(id="market-research", name="Market research", description="Trends of a market.",
                               tags=["research"])],
            security_schemes={"apiKey": SecurityScheme(api_key_security_scheme=APIKeySecurityScheme(
                location="header", name="X-API-Key"))},
            security_requirements=[SecurityRequirement(schemes={"apiKey": StringList(list=[])})],
        )

    async def start(self) -> str:
        holder: dict[str, Any] = {}

        async def guarded(scope: Any, receive: Any, send: Any) -> None:
            """The card is public; everything else needs the platform's API key (401 otherwise)."""
            if scope["type"] == "http" and not scope["path"].startswith("/.well-known/"):
                key = dict(scope["headers"]).get(b"x-api-key")
                self.keys.append(key.decode() if key else None)
                if key != API_KEY.encode():
                    await JSONResponse({"error": "unauthorized"}, status_code=401,
                                       headers={"WWW-Authenticate": "ApiKey"})(scope, receive, send)
                    return
            await holder["app"](scope, receive, send)

        self.server = LocalServer(guarded)
        self.url = await self.server.start()
        card = self.card(self.url)
        handler = DefaultRequestHandler(agent_executor=_Executor(self), task_store=InMemoryTaskStore(),
                                        agent_card=card)
        not_a_card = Route("/.well-known/not-a-card.json", lambda request: JSONResponse({"hello": "world"}))
        app = Starlette(routes=[*create_agent_card_routes(card), *create_jsonrpc_routes(handler, "/"),
                                *create_rest_routes(handler), not_a_card])
        holder["app"] = app
        return self.url

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
