"""An ASGI app served by uvicorn on a free local port, in the test's own event loop (real HTTP, no mock).

The scripted model, the signed HTTP tool endpoint and the MCP server of the agents tests are each one of these.
"""

import asyncio
from typing import Any, Literal

import uvicorn


class LocalServer:
    def __init__(self, app: Any, lifespan: Literal["on", "off"] = "off") -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                                    lifespan=lifespan))
        self.url = ""

    async def start(self) -> str:
        """Serve; the base URL (`http://127.0.0.1:<port>`)."""
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self.task.done():
                self.task.result()  # the server failed to start: raise why
            await asyncio.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        self.server.should_exit = True
        await self.task
