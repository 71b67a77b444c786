"""The A2A routes of every agent, added to the gateway's app (`mount(app)`): see the package's docstring."""

from a2a.server.routes import create_rest_routes
from a2a.server.routes.jsonrpc_dispatcher import JsonRpcDispatcher
from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH
from fastapi import FastAPI
from starlette.routing import BaseRoute, Mount, Route

from services.gateway.a2a.auth import CallContextBuilder, PublicOrgs, PublishedAgents, guarded
from services.gateway.a2a.card import agent_card
from services.gateway.a2a.handler import BusRequestHandler

BASE = "/a2a/{org}/{agent}"
"""`{org}`: the org's slug (what its cards name) or its id."""


def mount(app: FastAPI) -> None:
    handler, builder = BusRequestHandler(app.state.bus), CallContextBuilder()
    published = PublishedAgents(app.state.bus)
    app.state.a2a_orgs = PublicOrgs(app.state.bus)
    jsonrpc = guarded(JsonRpcDispatcher(handler, context_builder=builder, enable_v0_3_compat=True).handle_requests,
                      published)
    rest: list[BaseRoute] = [
        Route(route.path, guarded(route.endpoint, published), methods=list(route.methods or ()))
        for route in create_rest_routes(handler, builder, enable_v0_3_compat=True)
        if isinstance(route, Route)  # not its `/{tenant}` copies: one org per URL already
    ]
    app.router.routes.append(Route(BASE, jsonrpc, methods=["POST"]))
    app.router.routes.append(Mount(BASE, routes=[
        Route(AGENT_CARD_WELL_KNOWN_PATH, agent_card, methods=["GET"]), Route("/", jsonrpc, methods=["POST"]), *rest]))
