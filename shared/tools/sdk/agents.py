"""`one.agents`: an org's agents, their configs, chats with them (waited for or streamed), runs, conversations.

    agent = await one.agents.create("helper", "Helper", config={"model": "openai:gpt-4o-mini", "tools": ["thing_query"]})
    await one.agents.deploy("helper")
    reply = await one.agents.chat("helper", "What did we sell this week?")        # the finished run
    async for event in one.agents.chat_stream("helper", "And last week?"):       # the run as it happens
        if event.kind == "text":
            print(event.text, end="", flush=True)

An agent is named by its slug (over the bus also by its id: `get(UUID(...))`). A streamed chat is the
same `ChatEvent`s on both transports (`agents_stream.py`): over the bus the steps of the run, read
without gap or repeat; over HTTP the chat route's AG-UI stream.
"""

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any
from uuid import UUID

from shared.contracts.agents import (
    AGENT_ARCHIVE,
    AGENT_CONFIGURE,
    AGENT_CREATE,
    AGENT_DEPLOY,
    AGENT_GET,
    AGENT_LIST,
    AGENT_UPDATE,
    AGENT_VERSIONS,
    CHAT,
    CONVERSATION_GET,
    CONVERSATION_LIST,
    MESSAGE_LIST,
    RUN_GET,
    RUN_LIST,
    RUN_STEPS,
    Agent,
    AgentConfigInput,
    AgentConfigs,
    AgentPage,
    ChatReply,
    Conversation,
    ConversationPage,
    MessagePage,
    Run,
    RunPage,
    RunSteps,
    step_subject,
)
from shared.tools.sdk.agents_stream import ChatEvent, StepEvents, StepFeed, agui_events, follow_steps
from shared.tools.sdk.namespace import Namespace, given
from shared.tools.sdk.transport import as_json

CHAT_TIMEOUT = 600.0
"""How long a waited-for chat may take: up to ten completions of a model on a busy CPU (the gateway's own limit)."""

Config = AgentConfigInput | dict[str, Any]


class Agents(Namespace):
    # --- agents ---------------------------------------------------------------

    async def create(self, slug: str, name: str, *, type: str | None = None, description: str | None = None,
                     config: Config | None = None) -> Agent:
        """A new agent (a thing of `type`, `ai_clone` by default) with its first development config."""
        return await self._call(AGENT_CREATE, slug=slug, name=name, type=type, description=description,
                                config=_config(config))

    async def list(self, *, include_archived: bool | None = None, cursor: UUID | None = None,
                   limit: int | None = None) -> AgentPage:
        return await self._call(AGENT_LIST, include_archived=include_archived, cursor=cursor, limit=limit)

    async def get(self, agent: str | UUID) -> Agent:
        """By slug, or (over the bus) by id."""
        return await self._call(AGENT_GET, **_ref(agent))

    async def update(self, agent: str | UUID, *, name: str | None = None, description: str | None = None) -> Agent:
        return await self._call(AGENT_UPDATE, **_ref(agent), name=name, description=description)

    async def configure(self, agent: str | UUID, config: Config, *, expected_version: int | None = None) -> Agent:
        """Replace the development config (a new version); `expected_version` refuses a concurrent change."""
        return await self._call(AGENT_CONFIGURE, **_ref(agent), config=_config(config),
                                expected_version=expected_version)

    async def versions(self, agent: str | UUID, *, environment: str | None = None) -> AgentConfigs:
        return await self._call(AGENT_VERSIONS, **_ref(agent), environment=environment)

    async def deploy(self, agent: str | UUID) -> Agent:
        """Promote the current development config to production."""
        return await self._call(AGENT_DEPLOY, **_ref(agent))

    async def archive(self, agent: str | UUID) -> Agent:
        return await self._call(AGENT_ARCHIVE, **_ref(agent))

    # --- chat -----------------------------------------------------------------

    async def chat(self, agent: str | UUID, message: str, *, timeout: float | None = CHAT_TIMEOUT,
                   **fields: Any) -> ChatReply:
        """Send a message and wait for the finished run (`reply.run.answer`, `.model`, `.status`).

        `fields`: `thread_id`, `external_thread_id`, `environment` (`production` by default), `step`,
        `variables`, `tags`, `attachments` (see `ChatRequest`).
        """
        return await self._call(CHAT, timeout=timeout, **_ref(agent), message=message, **fields)

    async def chat_stream(self, agent: str | UUID, message: str, **fields: Any) -> AsyncIterator[ChatEvent]:
        """Send a message and follow the run as it happens: `started`, `text` pieces in order, `tool_call`s and
        `tool_result`s, then `finished` (the model in `.model`) or `failed`. A refusal before the run starts
        (unknown agent, not deployed, ...) is raised as its typed error."""
        payload = as_json(given({**_ref(agent), "message": message, **fields}))
        if self.transport.kind == "http":
            path = f"/v1/agents/{_slug_for_http(payload)}/chat"
            async with aclosing(agui_events(self.transport, "POST", path, body={**payload, "stream": True})) as stream:
                async for event in stream:
                    yield event
            return
        transport: Any = self.transport
        feed = await StepFeed.open(transport.bus.nc, step_subject(transport.ctx.org_id, "*"))  # before the run starts
        try:
            reply: ChatReply = await self.transport.request(CHAT, {**payload, "wait": False})
        except BaseException:
            await feed.close()
            raise
        async with aclosing(self._events(reply.run, feed)) as events:
            async for event in events:
                yield event

    async def follow(self, run_id: UUID, *, after: int = 0) -> AsyncIterator[ChatEvent]:
        """A run of the org as it happens (or happened): its steps after `after`, then live ones, until it ends."""
        if self.transport.kind == "http":
            path = f"/v1/runs/{run_id}/events"
            async with aclosing(agui_events(self.transport, "GET", path, params={"after": after})) as stream:
                async for event in stream:
                    yield event
            return
        transport: Any = self.transport
        feed = await StepFeed.open(transport.bus.nc, step_subject(transport.ctx.org_id, run_id))
        try:
            run = await self.run(run_id)
        except BaseException:
            await feed.close()
            raise
        async with aclosing(self._events(run, feed, after=after)) as events:
            async for event in events:
                yield event

    async def _events(self, run: Run, feed: StepFeed, after: int = 0) -> AsyncIterator[ChatEvent]:
        events = StepEvents(run)
        async with aclosing(follow_steps(self.transport, run, feed, after=after)) as steps:  # closed with this one
            async for step in steps:
                for event in events.of(step):
                    yield event

    # --- runs and conversations -------------------------------------------------

    async def run(self, id: UUID) -> Run:
        return await self._call(RUN_GET, id=id)

    async def runs(self, *, agent: str | None = None, conversation_id: UUID | None = None, status: str | None = None,
                   cursor: UUID | None = None, limit: int | None = None) -> RunPage:
        return await self._call(RUN_LIST, agent=agent, conversation_id=conversation_id, status=status, cursor=cursor,
                                limit=limit)

    async def steps(self, run_id: UUID, *, after_seq: int | None = None, limit: int | None = None) -> RunSteps:
        """The run's stored steps after `after_seq`, in order."""
        return await self._call(RUN_STEPS, run_id=run_id, after_seq=after_seq, limit=limit)

    async def conversation(self, id: UUID) -> Conversation:
        return await self._call(CONVERSATION_GET, id=id)

    async def conversations(self, *, status: str | None = None, cursor: UUID | None = None,
                            limit: int | None = None) -> ConversationPage:
        return await self._call(CONVERSATION_LIST, status=status, cursor=cursor, limit=limit)

    async def messages(self, conversation_id: UUID, *, after_seq: int | None = None,
                       limit: int | None = None) -> MessagePage:
        return await self._call(MESSAGE_LIST, conversation_id=conversation_id, after_seq=after_seq, limit=limit)


def _ref(agent: str | UUID) -> dict[str, Any]:
    return {"id": agent} if isinstance(agent, UUID) else {"slug": agent}


def _config(config: Config | None) -> dict[str, Any] | None:
    return config.model_dump(mode="json", exclude_unset=True) if isinstance(config, AgentConfigInput) else config


def _slug_for_http(payload: dict[str, Any]) -> str:
    from urllib.parse import quote

    from shared.kernel.errors import InvalidRequest

    slug = payload.pop("slug", None)
    if slug is None:
        raise InvalidRequest("over HTTP an agent is named by its slug, not its id", {"field": "slug"})
    payload.pop("id", None)
    return quote(str(slug), safe="")
