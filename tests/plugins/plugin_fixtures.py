"""Helpers of the plugin tests: the sample registry imported once, registries of unique plugins, a local endpoint.

Import the fixtures by name in a test module (`from tests.plugins.plugin_fixtures import ...  # noqa: F401`).
"""

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from shared.contracts.agents.plugins import PLUGIN_IMPORT
from shared.runtime.client import BusClient
from tests.agents.local_server import LocalServer
from tests.tenancy.conftest import Account, admin, owner, unique  # noqa: F401 (fixtures)

WEATHER, GEOCODING, HTTP = "@elizaos/plugin-weather", "@elizaos/plugin-geocoding", "@elizaos/plugin-http"


@pytest.fixture(scope="session")
async def sample(bus: BusClient, platform: Account) -> Any:  # noqa: F811
    """The shipped sample registry, imported by the platform owner (again: the import is idempotent)."""
    return await bus.request(PLUGIN_IMPORT, {"sample": True}, platform.ctx, timeout=120)


def entry(version: str, dependencies: dict[str, str] | None = None, **one: Any) -> dict[str, Any]:
    """A registry entry of an installable plugin in the elizaOS registry's shape."""
    return {"git": {"repo": f"test-plugins/{unique('p')}", "v1": {"version": version, "branch": "main"}},
            "npm": {"v1": version}, "supports": {"v0": False, "v1": True}, "description": "A test plugin.",
            "one": {"runtime": "http", "dependencies": dependencies or {}, **one}}


async def import_entries(bus: BusClient, platform: Account, entries: dict[str, dict[str, Any]]) -> Any:  # noqa: F811
    return await bus.request(PLUGIN_IMPORT, {"registry": {"registry": entries}}, platform.ctx, timeout=120)


class Endpoint:
    """A plugin action's server: answers a forecast, or fails with 500 while `failing`; records what it got."""

    def __init__(self) -> None:
        self.failing = False
        self.calls: list[dict[str, Any]] = []
        self.server = LocalServer(Starlette(routes=[Route("/forecast", self.forecast, methods=["POST"])]))

    async def forecast(self, request: Request) -> JSONResponse:
        body = await request.body()
        self.calls.append({"body": json.loads(body), "signature": request.headers.get("x-one-signature"),
                           "raw": body})
        if self.failing:
            return JSONResponse({"error": "upstream down"}, status_code=500)
        return JSONResponse({"city": json.loads(body)["city"], "forecast": ["sun", "rain"]})

    def signed_with(self, secret: str, call: dict[str, Any]) -> bool:
        t, v1 = (part.split("=", 1)[1] for part in call["signature"].split(","))
        expected = hmac.new(secret.encode(), f"{t}.".encode() + call["raw"], hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, v1)


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    server = Endpoint()
    await server.server.start()
    yield server
    await server.server.stop()
