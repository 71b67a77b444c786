"""The org's wallet and its agents' budgets over HTTP, with its API key (what `one x402 wallet|budget` send over
`ONE_URL`). Signing is not here: only the agents service, acting for a paying agent, asks commerce to sign.
"""

from uuid import UUID

from fastapi import APIRouter

from services.gateway.auth import Caller
from services.gateway.routes_graph import READ, WRITE, Bus
from services.gateway.shapes import derived
from shared.contracts.commerce.wallet import (
    BUDGET_GET,
    BUDGET_SET,
    WALLET_CREATE,
    WALLET_GET,
    Budget,
    BudgetSet,
    Wallet,
)

router = APIRouter(prefix="/v1/x402", tags=["x402"])
BudgetLimits = derived(BudgetSet, "BudgetLimits", drop=("agent_id",))


@router.post("/wallet", responses=WRITE)
async def create_wallet(caller: Caller, bus: Bus) -> Wallet:
    """Create the org's wallet (idempotent: the existing one otherwise); its key never leaves commerce."""
    return await bus.request(WALLET_CREATE, {}, caller)


@router.get("/wallet", responses=READ)
async def get_wallet(caller: Caller, bus: Bus) -> Wallet:
    return await bus.request(WALLET_GET, {}, caller)


@router.put("/budgets/{agent_id}", responses=WRITE)
async def set_budget(agent_id: UUID, body: BudgetLimits, caller: Caller, bus: Bus) -> Budget:  # type: ignore[valid-type]
    """What the agent may pay from the org's wallet per call and per 24 hours (atomic units)."""
    return await bus.request(BUDGET_SET, {"agent_id": agent_id, **body.model_dump(mode="json")}, caller)


@router.get("/budgets/{agent_id}", responses=READ)
async def get_budget(agent_id: UUID, caller: Caller, bus: Bus) -> Budget:
    return await bus.request(BUDGET_GET, {"agent_id": agent_id}, caller)
