"""ACP checkout fixtures: merchants over real HTTP, their catalog, and every body checked against the official schema.

The validator here is built from the official bundle (`shared/contracts/commerce/acp_spec/`, a verbatim copy
of ACP 2026-04-17's `schema.agentic_checkout.json`) with `jsonschema` directly, not with the code under
test: every request a test means to be valid is checked before it is sent, every answer after it arrives.
"""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from uuid import uuid4

import httpx
import pytest
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

from shared.contracts.commerce.products import PRODUCT_CREATE
from shared.runtime.client import BusClient
from tests.gateway.conftest import Caller, alice, bob, http  # noqa: F401 (fixtures)

BUNDLE = json.loads((Path(__file__).parents[2] / "shared/contracts/commerce/acp_spec/schema.agentic_checkout.json")
                    .read_text())
_REGISTRY = Registry().with_resource(BUNDLE["$id"], Resource.from_contents(BUNDLE))
T = TypeVar("T")
VERSION = "2026-04-17"
SESSIONS = "/acp/checkout_sessions"
ADDRESS = {"name": "Jane Doe", "line_one": "555 Golden Gate Avenue", "line_two": "Apt 401", "city": "San Francisco",
           "state": "CA", "country": "US", "postal_code": "94102"}
SHIPPING = [{"id": "standard", "type": "shipping", "title": "Standard shipping", "amount": 500, "carrier": "USPS"},
            {"id": "express", "type": "shipping", "title": "Express shipping", "amount": 1500}]


def validate(definition: str, instance: Any) -> None:
    """`instance` is a valid `definition` of the official bundle (raises with the reason)."""
    Draft202012Validator({"$ref": f"{BUNDLE['$id']}#/$defs/{definition}"}, registry=_REGISTRY,
                         format_checker=FormatChecker()).validate(instance)


async def eventually(probe: Callable[[], Awaitable[T]], timeout: float = 20.0) -> T:
    """Ask `probe` until it answers something truthy (events and graph writes land after the reply)."""
    deadline = time.monotonic() + timeout
    while not (answer := await probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s")
        await asyncio.sleep(0.1)
    return answer


def acp_headers(key: str | None = None, version: str | None = VERSION) -> dict[str, str]:
    headers = {"Idempotency-Key": key or str(uuid4())}
    if version is not None:
        headers["API-Version"] = version
    return headers


def total(session: dict[str, Any], kind: str = "total") -> int:
    return next(t["amount"] for t in session["totals"] if t["type"] == kind)


@dataclass
class Merchant:
    """An org selling through ACP: its owner's HTTP client and key, and the bus to stock its catalog."""

    caller: Caller
    bus: BusClient

    @property
    def http(self) -> httpx.AsyncClient:
        return self.caller.http

    async def product(self, name: str = "Widget", price: int = 1999, **fields: Any) -> str:
        created = await self.bus.request(PRODUCT_CREATE, {"name": name, "price": price, **fields},
                                         self.caller.account.ctx)
        return str(created.id)

    async def send(self, method: str, path: str, body: dict[str, Any] | None = None, *, definition: str | None = None,
                   headers: dict[str, str] | None = None) -> httpx.Response:
        """One ACP request; a body meant to be valid is checked against `definition` before it leaves."""
        if definition is not None and body is not None:
            validate(definition, body)
        response = await self.http.request(method, path, json=body,
                                           headers=headers if headers is not None else acp_headers())
        if response.status_code < 300:
            answer = response.json()
            validate("CheckoutSessionWithOrder" if "order" in answer else "CheckoutSession", answer)
        elif response.content:
            validate("Error", response.json())
        return response

    async def expect(self, status: int, method: str, path: str, body: dict[str, Any] | None = None,
                     definition: str | None = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
        response = await self.send(method, path, body, definition=definition, headers=headers)
        assert response.status_code == status, response.text
        return response.json()

    async def create(self, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
        return await self.expect(status, "POST", SESSIONS, body, "CheckoutSessionCreateRequest")

    async def update(self, session_id: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
        return await self.expect(status, "POST", f"{SESSIONS}/{session_id}", body, "CheckoutSessionUpdateRequest")

    async def get(self, session_id: str, status: int = 200) -> dict[str, Any]:
        return await self.expect(status, "GET", f"{SESSIONS}/{session_id}", headers={"API-Version": VERSION})

    async def complete(self, session_id: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
        return await self.expect(status, "POST", f"{SESSIONS}/{session_id}/complete", body,
                                 "CheckoutSessionCompleteRequest")

    async def cancel(self, session_id: str, body: dict[str, Any] | None = None, status: int = 200) -> dict[str, Any]:
        return await self.expect(status, "POST", f"{SESSIONS}/{session_id}/cancel", body or {}, "CancelSessionRequest")


def create_body(*product_ids: str, currency: str = "usd", **fields: Any) -> dict[str, Any]:
    """A `CheckoutSessionCreateRequest`: one `Item` per unit (the bundle's items carry no quantity)."""
    return {"line_items": [{"id": p} for p in product_ids], "currency": currency, "capabilities": {}, **fields}


def card(token: str) -> dict[str, Any]:
    """`payment_data` paying with a Delegate Payment vault token through the merchant's delegated card handler."""
    return {"handler_id": "delegated_card", "instrument": {"type": "card", "credential": {"type": "spt",
                                                                                          "token": token}}}


@pytest.fixture
def merchant(alice: Caller, bus: BusClient) -> Merchant:  # noqa: F811
    return Merchant(alice, bus)


@pytest.fixture
def rival(bob: Caller, bus: BusClient) -> Merchant:  # noqa: F811
    """Another org's merchant: the cross-tenant attacker."""
    return Merchant(bob, bus)
