"""`/mcp` on the gateway: the key checked like any route's, then the MCP session manager (stateless).

The session manager needs a running task group; it is started on the first request (the gateway's
uvicorn runs without a lifespan) and closed by `close(app)` when the gateway stops.
"""

import asyncio

from fastapi import FastAPI
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from services.gateway import problems
from services.gateway.auth import api_key_header, authenticated, bearer
from services.gateway.mcp.tools import CALLER, build_server
from shared.kernel.errors import OneError

PATH = "/mcp"


class McpEndpoint:
    def __init__(self, app: FastAPI) -> None:
        self.manager = StreamableHTTPSessionManager(app=build_server(app.state.bus)._lowlevel_server,
                                                    json_response=True, stateless=True)
        self._running: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            caller = await authenticated(request, await bearer(request), await api_key_header(request))
        except OneError as error:
            await problems.one_error_response(request, error)(scope, receive, send)
            return
        scope.setdefault("state", {})[CALLER] = caller
        await self._started()
        await self.manager.handle_request(scope, receive, send)

    async def _started(self) -> None:
        if self._running is None:  # one task enters and leaves the manager's task group (anyio requires it)
            self._running = asyncio.create_task(self._run(), name="gateway-mcp")
        await self._ready.wait()

    async def _run(self) -> None:
        async with self.manager.run():
            self._ready.set()
            await self._stop.wait()

    async def close(self) -> None:
        if self._running is not None:
            self._stop.set()
            await self._running
            self._running = None


def mount(app: FastAPI) -> None:
    endpoint = McpEndpoint(app)
    app.state.mcp = endpoint
    app.router.routes.append(Route(PATH, endpoint, methods=["GET", "POST", "DELETE"]))


async def close(app: object) -> None:
    endpoint = getattr(getattr(app, "state", None), "mcp", None)
    if isinstance(endpoint, McpEndpoint):
        await endpoint.close()
