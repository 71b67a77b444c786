"""The HTTP server inside the gateway's service runtime: uvicorn on the runtime's event loop.

`one serve gateway` runs the bus runtime as every service does (on uvloop: `one serve` picks it
for the gateway); its `on_start` hook starts uvicorn (the httptools parser) with the app built on
`runtime.bus`, and its `on_stop` hook stops it (in-flight requests finish while the bus is still up). The socket is bound here, before uvicorn runs,
so a taken port fails the start with an `OSError` instead of uvicorn's `sys.exit`, and port 0
takes any free port. The runtime owns SIGTERM/SIGINT: uvicorn is not let near them.
"""

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn
from starlette.types import ASGIApp

from services.gateway.api import create_app
from services.gateway.mcp.mount import close as close_mcp
from services.gateway.settings import GatewaySettings
from shared.runtime.service import ServiceRuntime

log = logging.getLogger(__name__)


KEEP_ALIVE = 75
"""Seconds an idle keep-alive connection stays open: longer than a balancer's idle timeout (60 s is common),
so the balancer, not the gateway, closes idle connections and never sends a request on one being closed."""


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the service runtime stops the server on its signals, through `stop_http`


@dataclass
class GatewayState:
    """The gateway replica's `runtime.state`: its HTTP server and where it listens."""

    server: uvicorn.Server
    task: asyncio.Task[None]
    url: str


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle's algorithm off only for sockets that say they are TCP, and with it
    # on, a response written in two pieces (headers, body) waited ~40 ms for the client's delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


async def serve(app: ASGIApp, host: str, port: int, graceful: float = 10.0) -> GatewayState:
    """Run `app` with uvicorn on this loop until `state.server.should_exit`; returns once it listens."""
    sock = bind(host, port)
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(app, http="httptools", lifespan="off", log_config=None, access_log=False,
                            server_header=False, timeout_graceful_shutdown=graceful, timeout_keep_alive=KEEP_ALIVE)
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="gateway-http")
    while not server.started:  # listening before the runtime calls itself started
        if task.done():
            sock.close()
            task.result()
            raise RuntimeError("the gateway's HTTP server stopped while starting")
        await asyncio.sleep(0.01)
    return GatewayState(server, task, f"http://{f'[{host}]' if ':' in host else host}:{port}")


async def start_http(runtime: ServiceRuntime) -> None:
    settings: GatewaySettings = runtime.settings
    app = create_app(runtime.bus, settings)
    runtime.state = await serve(app, settings.gateway_host, settings.gateway_port, settings.request_timeout)
    log.info("gateway listening on %s", runtime.state.url)


async def stop_http(runtime: ServiceRuntime) -> None:
    state: GatewayState | None = runtime.state
    if state is None:
        return
    state.server.should_exit = True
    await state.task
    await close_mcp(state.server.config.app)
