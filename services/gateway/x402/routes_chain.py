"""The local test chain over HTTP, with an API key: mint test tokens, read a balance (what `one x402 fund|balance`
send over `ONE_URL`). Only commerce's built-in local facilitator has such a chain; on a real network commerce
refuses. An address's balance is public on any chain: no org's data is read here.
"""

from typing import Annotated

from fastapi import APIRouter, Path

from services.gateway.auth import Caller
from services.gateway.routes_graph import READ, WRITE, Bus
from shared.contracts.commerce.facilitator import CHAIN_BALANCE, CHAIN_FUND, ChainBalance, ChainFund

router = APIRouter(prefix="/v1/x402/chain", tags=["x402"])
Address = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{40}$")]


@router.post("/fund", responses=WRITE)
async def fund(body: ChainFund, caller: Caller, bus: Bus) -> ChainBalance:
    """Mint test tokens (atomic units) to an address on the local chain."""
    return await bus.request(CHAIN_FUND, body, caller)


@router.get("/balances/{address}", responses=READ)
async def balance(address: Address, caller: Caller, bus: Bus) -> ChainBalance:
    return await bus.request(CHAIN_BALANCE, {"address": address}, caller)
