"""Org wallets over the bus: the key sealed at rest, signatures only for an agent, only within its budget.

Real NATS and Postgres; the signatures are checked by recovering the signer from x402's own EIP-712 hash.
"""

import asyncio
import secrets
import time
from typing import Any

import asyncpg
import pytest
from eth_account import Account
from x402.mechanisms.evm.eip712 import hash_eip3009_authorization
from x402.mechanisms.evm.types import ExactEIP3009Authorization

from services.commerce import keys
from shared.contracts.commerce.wallet import (
    BUDGET_GET,
    BUDGET_SET,
    WALLET_CREATE,
    WALLET_GET,
    WALLET_RECEIPT,
    WALLET_SIGN,
    BudgetExceeded,
    SignatureRefused,
)
from shared.kernel.envelope import AuthContext, Protocol
from shared.kernel.errors import Conflict, Forbidden, NotFound
from shared.kernel.ids import uuid7
from shared.runtime.client import BusClient
from shared.runtime.context import service_identity
from shared.runtime.service import ServiceRuntime
from tests.agents.agent_fixtures import make_agent
from tests.cli.conftest import Cli, one, one_line_error  # noqa: F401 (fixture)
from tests.gateway.conftest import assert_problem, caller_for  # noqa: F401 (fixture)
from tests.graph.conftest import owner, stranger  # noqa: F401 (fixtures)
from tests.tenancy.conftest import Account as Member, admin  # noqa: F401 (fixtures)

ASSET = "0x" + "a1" * 20
PAY_TO = "0x" + "b2" * 20
DOMAIN = {"name": "One Test USD", "version": "1", "chainId": 131277322940537, "verifyingContract": ASSET}


def paying(org_id: Any, agent_id: Any) -> AuthContext:
    """What the agents service sends when an agent pays: its own identity, acting for the agent."""
    return service_identity("agents", org_id, ("wallets:sign",), on_behalf_of=agent_id)


def transfer(address: str, value: int, **changes: Any) -> dict[str, Any]:
    message = {"from": address, "to": PAY_TO, "value": str(value), "validAfter": "0",
               "validBefore": str(int(time.time()) + 300), "nonce": "0x" + secrets.token_hex(32)}
    return {**message, **changes}


async def sign(bus: BusClient, member: Member, agent_id: Any, message: dict[str, Any], **fields: Any) -> Any:
    body = {"agent_id": str(agent_id), "domain": DOMAIN, "primary_type": "TransferWithAuthorization",
            "message": message, "resource": "http://seller.test/paid", **fields}
    return await bus.request(WALLET_SIGN, body, paying(member.org_id, agent_id), protocol=Protocol.X402)


async def agent_with_budget(bus: BusClient, member: Member, per_call: int, per_day: int) -> Any:
    agent = await make_agent(bus, member, "openai:unused", deploy=False)
    await bus.request(BUDGET_SET, {"agent_id": str(agent.id), "per_call": per_call, "per_day": per_day}, member.ctx)
    return agent


def signer_of(message: dict[str, Any], signature: str) -> str:
    authorization = ExactEIP3009Authorization(
        from_address=message["from"], to=message["to"], value=message["value"], valid_after=message["validAfter"],
        valid_before=message["validBefore"], nonce=message["nonce"])
    digest = hash_eip3009_authorization(authorization, DOMAIN["chainId"], ASSET, DOMAIN["name"], DOMAIN["version"])
    return Account._recover_hash(digest, signature=bytes.fromhex(signature[2:]))


async def test_wallet_is_created_once_and_its_key_is_stored_only_sealed(
    bus: BusClient, owner: Member, admin: asyncpg.Connection, services: dict[str, ServiceRuntime]  # noqa: F811
) -> None:
    with pytest.raises(NotFound):
        await bus.request(WALLET_GET, {}, owner.ctx)
    created = await bus.request(WALLET_CREATE, {}, owner.ctx)
    again = await bus.request(WALLET_CREATE, {}, owner.ctx)
    assert created.created and not again.created and again.address == created.address
    assert (await bus.request(WALLET_GET, {}, owner.ctx)).address == created.address

    row = await admin.fetchrow("SELECT * FROM commerce.wallets WHERE org_id = $1", owner.org_id)
    sealed = bytes(row["key_sealed"])
    key = await keys.open_sealed(services["commerce"], keys.WALLET_KEY, owner.org_id, sealed)
    assert Account.from_key(key).address == created.address
    stored = b"".join(str(v).encode() if not isinstance(v, bytes) else v for v in row.values())
    assert key not in stored and key.hex().encode() not in stored and key.hex() not in str(dict(row))
    with pytest.raises(ValueError):  # sealed for this org: it does not open as another's
        await keys.open_sealed(services["commerce"], keys.WALLET_KEY, row["created_by"], sealed)


async def test_only_the_agents_service_acting_for_the_agent_gets_a_signature(
    bus: BusClient, owner: Member, stranger: Member  # noqa: F811
) -> None:
    address = (await bus.request(WALLET_CREATE, {}, owner.ctx)).address
    agent = await agent_with_budget(bus, owner, 100, 1000)
    body = {"agent_id": str(agent.id), "domain": DOMAIN, "primary_type": "TransferWithAuthorization",
            "message": transfer(address, 10)}
    with pytest.raises(Forbidden):  # the org's owner holds every permission, but is not the agent
        await bus.request(WALLET_SIGN, body, owner.ctx, protocol=Protocol.X402)
    other = await make_agent(bus, owner, "openai:unused", deploy=False)
    with pytest.raises(Forbidden):  # the agents service acting for another agent
        await bus.request(WALLET_SIGN, body, paying(owner.org_id, other.id), protocol=Protocol.X402)
    with pytest.raises(NotFound):  # another org's agents service: that org has no wallet; this one's is not seen
        await bus.request(WALLET_SIGN, body, paying(stranger.org_id, agent.id), protocol=Protocol.X402)

    signed = await sign(bus, owner, agent.id, body["message"])
    assert signed.address == address and signer_of(body["message"], signed.signature) == address


async def test_the_wallet_signs_only_an_eip3009_transfer_from_itself(bus: BusClient, owner: Member) -> None:  # noqa: F811
    address = (await bus.request(WALLET_CREATE, {}, owner.ctx)).address
    agent = await agent_with_budget(bus, owner, 100, 1000)
    cases = {
        "unsupported_type": {"primary_type": "Permit"},
        "wrong_payer": {"message": transfer(PAY_TO, 10)},
        "expired": {"message": transfer(address, 10, validBefore=str(int(time.time()) - 1))},
        "validity_too_long": {"message": transfer(address, 10, validBefore=str(int(time.time()) + 86400 * 30))},
        "invalid_nonce": {"message": transfer(address, 10, nonce="0x1234")},
        "invalid_amount": {"message": transfer(address, 0)},
    }
    for reason, change in cases.items():
        message = change.pop("message", transfer(address, 10))
        with pytest.raises(SignatureRefused) as refused:
            await sign(bus, owner, agent.id, message, **change)
        assert refused.value.details["reason"] == reason
    message = transfer(address, 10)
    await sign(bus, owner, agent.id, message)
    with pytest.raises(SignatureRefused) as refused:
        await sign(bus, owner, agent.id, message)
    assert refused.value.details["reason"] == "nonce_reused"


async def test_budget_per_call_and_per_day(bus: BusClient, owner: Member) -> None:  # noqa: F811
    address = (await bus.request(WALLET_CREATE, {}, owner.ctx)).address
    unbudgeted = await make_agent(bus, owner, "openai:unused", deploy=False)
    with pytest.raises(BudgetExceeded) as refused:
        await sign(bus, owner, unbudgeted.id, transfer(address, 1))
    assert refused.value.details["limit"] == "none"

    agent = await agent_with_budget(bus, owner, 100, 250)
    with pytest.raises(BudgetExceeded) as refused:
        await sign(bus, owner, agent.id, transfer(address, 101))
    assert refused.value.details["limit"] == "per_call"
    await sign(bus, owner, agent.id, transfer(address, 100))
    await sign(bus, owner, agent.id, transfer(address, 100))
    with pytest.raises(BudgetExceeded) as refused:
        await sign(bus, owner, agent.id, transfer(address, 100))
    assert refused.value.details == {"limit": "per_day", "amount": 100, "budget": 250, "spent": 200}
    await sign(bus, owner, agent.id, transfer(address, 50))  # what is left of the day still pays
    budget = await bus.request(BUDGET_GET, {"agent_id": str(agent.id)}, owner.ctx)
    assert (budget.per_call, budget.per_day, budget.spent_last_day) == (100, 250, 250)


async def test_concurrent_signs_cannot_both_pass_the_budget(bus: BusClient, owner: Member) -> None:  # noqa: F811
    address = (await bus.request(WALLET_CREATE, {}, owner.ctx)).address
    agent = await agent_with_budget(bus, owner, 100, 250)
    results = await asyncio.gather(*(sign(bus, owner, agent.id, transfer(address, 100)) for _ in range(6)),
                                   return_exceptions=True)
    signed = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BudgetExceeded)]
    assert len(signed) == 2 and len(refused) == 4, results
    budget = await bus.request(BUDGET_GET, {"agent_id": str(agent.id)}, owner.ctx)
    assert budget.spent_last_day == 200


async def test_a_receipt_is_recorded_once_and_a_budget_needs_a_real_agent(
    bus: BusClient, owner: Member, stranger: Member  # noqa: F811
) -> None:
    address = (await bus.request(WALLET_CREATE, {}, owner.ctx)).address
    agent = await agent_with_budget(bus, owner, 100, 1000)
    signed = await sign(bus, owner, agent.id, transfer(address, 40))
    receipt = {"spend_id": str(signed.spend_id), "success": True, "transaction": "0x" + "cd" * 32,
               "network": "eip155:131277322940537"}
    spend = await bus.request(WALLET_RECEIPT, receipt, paying(owner.org_id, agent.id), protocol=Protocol.X402)
    assert (spend.status, spend.amount, spend.tx_hash, spend.pay_to) == ("settled", 40, receipt["transaction"], PAY_TO)
    with pytest.raises(Conflict):
        await bus.request(WALLET_RECEIPT, receipt, paying(owner.org_id, agent.id), protocol=Protocol.X402)
    with pytest.raises(NotFound):  # the spend is the owner org's: another org does not see it
        await bus.request(WALLET_RECEIPT, receipt, paying(stranger.org_id, agent.id), protocol=Protocol.X402)
    with pytest.raises(NotFound):  # a budget for an agent of another org
        await bus.request(BUDGET_SET, {"agent_id": str(agent.id), "per_call": 1, "per_day": 1}, stranger.ctx)


async def test_wallet_and_budget_from_the_cli(one: Cli, bus: BusClient, owner: Member) -> None:  # noqa: F811
    created = (await one("x402", "wallet", "create", "--json")).json()
    assert created["created"] and created["address"].startswith("0x")
    assert created["address"] in (await one("x402", "wallet", "show")).ok()
    agent = await make_agent(bus, owner, "openai:unused", deploy=False)
    budget = (await one("x402", "budget", "set", agent.slug, "--per-call", "0.01", "--per-day", "0.05",
                        "--json")).json()
    assert (budget["per_call"], budget["per_day"], budget["spent_last_day"]) == (10_000, 50_000, 0)
    shown = (await one("x402", "budget", "show", agent.slug)).ok()
    assert "0.01" in shown and "0.05" in shown and agent.slug in shown
    assert (await one("x402", "budget", "set", agent.slug, "--per-call", "0", "--per-day", "0", "--json")).json()[
        "per_day"] == 0
    one_line_error(await one("x402", "budget", "set", agent.slug, "--per-call", "-1", "--per-day", "1"), 2, "-1")
    one_line_error(await one("x402", "budget", "show", "no-such-agent"), 5, "no-such-agent")


async def test_wallet_and_budget_over_http(gateway: str, bus: BusClient, owner: Member) -> None:  # noqa: F811
    caller = await caller_for(gateway, owner)
    async with caller.http:
        created = await caller.call("POST", "/v1/x402/wallet")
        assert created.status_code == 200 and created.json()["created"], created.text
        assert (await caller.call("GET", "/v1/x402/wallet")).json()["address"] == created.json()["address"]
        agent = await make_agent(bus, owner, "openai:unused", deploy=False)
        set_ = await caller.call("PUT", f"/v1/x402/budgets/{agent.id}", {"per_call": 5, "per_day": 20})
        assert set_.status_code == 200 and (set_.json()["per_call"], set_.json()["per_day"]) == (5, 20), set_.text
        assert (await caller.call("GET", f"/v1/x402/budgets/{agent.id}")).json()["spent_last_day"] == 0
        assert_problem(await caller.call("PUT", f"/v1/x402/budgets/{agent.id}", {"per_call": -1, "per_day": 1}), 422)
        assert_problem(await caller.call("GET", f"/v1/x402/budgets/{uuid7()}"), 404, "not_found")
