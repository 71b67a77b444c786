"""The local chain itself: the Vyper token compiles (once, cached), deploys, and enforces EIP-3009 on its own.

These talk to the chain commerce runs in this process, below the bus, to show that the contract (not
our code) refuses a replayed nonce, a forged signature, an expired authorization and a stranger's mint.
"""

import json
import time
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from fastapi import FastAPI, Header, HTTPException
from web3 import Web3
from x402.schemas import PaymentPayload, PaymentRequirements

from services.commerce.chain.evm import LocalChain, compiled_token
from services.commerce.facilitator import LocalFacilitator, RemoteFacilitator, build_facilitator
from services.commerce.service_x402_facilitator import facilitator_of
from services.commerce.settings import CommerceSettings
from shared.kernel.errors import Unavailable
from shared.kernel.settings import Settings
from shared.runtime.service import ServiceRuntime
from tests.agents.local_server import LocalServer
from tests.cli.conftest import Cli, one, one_line_error  # noqa: F401 (fixture)
from tests.tenancy.conftest import owner  # noqa: F401 (fixtures)
from tests.x402.conftest import LocalToken, Payer, chain_balance, signed_payment


@pytest.fixture
def local(services: dict[str, ServiceRuntime]) -> LocalFacilitator:
    found = facilitator_of(services["commerce"])
    assert isinstance(found, LocalFacilitator), "the tests' commerce settles on the local chain"
    return found


def _authorization(payload: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    inner = payload["payload"]
    return inner["authorization"], bytes.fromhex(inner["signature"].removeprefix("0x"))


def _transfer(chain: LocalChain, authorization: dict[str, Any], signature: bytes) -> Any:
    """`transferWithAuthorization` sent straight to the token, from the facilitator's gas account."""
    v, r, s = signature[64], signature[:32], signature[32:64]
    call = chain.contract.functions.transferWithAuthorization(
        Web3.to_checksum_address(authorization["from"]), Web3.to_checksum_address(authorization["to"]),
        int(authorization["value"]), int(authorization["validAfter"]), int(authorization["validBefore"]),
        bytes.fromhex(authorization["nonce"].removeprefix("0x")), v if v >= 27 else v + 27, r, s)
    return call.call({"from": chain.signer.address})


def test_the_token_compiles_once_then_comes_from_the_cache(tmp_path: Path) -> None:
    artifact = compiled_token(tmp_path)
    functions = {entry["name"] for entry in artifact["abi"] if entry.get("type") == "function"}
    assert {"transferWithAuthorization", "receiveWithAuthorization", "authorizationState", "balanceOf", "mint",
            "name", "version", "decimals", "DOMAIN_SEPARATOR"} <= functions
    [cached] = tmp_path.glob("token-*.json")
    marked = {**json.loads(cached.read_text()), "marker": "from the cache"}
    cached.write_text(json.dumps(marked))
    assert compiled_token(tmp_path)["marker"] == "from the cache"
    cached.write_text("{not json")
    assert compiled_token(tmp_path)["abi"] == artifact["abi"]  # a corrupt artifact is compiled again


async def test_the_token_is_deployed_with_the_domain_prices_name(local: LocalFacilitator,
                                                                 local_token: LocalToken) -> None:
    chain = local.chain
    assert local_token.network == chain.network == f"eip155:{chain.chain_id}"
    assert local_token.asset == chain.asset and local_token.decimals == 6

    def read() -> tuple[Any, ...]:
        functions = chain.contract.functions
        return (functions.name().call(), functions.version().call(), functions.decimals().call(),
                len(chain.w3.eth.get_code(chain.asset)))

    name, version, decimals, code = await chain.run(read)
    assert (name, version, decimals) == (local_token.name, local_token.version, 6) and code > 0


async def test_only_the_deployer_mints(local: LocalFacilitator, bus: Any) -> None:
    chain, stranger = local.chain, Account.create()

    def mint_as(sender: str) -> None:
        chain.contract.functions.mint(stranger.address, 1).call({"from": sender})

    with pytest.raises(Exception, match="only the minter mints"):
        await chain.run(mint_as, chain.signer.address)
    assert await chain_balance(bus, stranger.address) == 0


async def test_the_contract_refuses_a_replayed_nonce(local: LocalFacilitator, payer: Payer, local_token: LocalToken,
                                                     bus: Any) -> None:
    """Settled twice straight through x402's facilitator (no replay store in front): the token refuses the second."""
    pay_to = Account.create().address
    requirements = local_token.requirements(pay_to, 250_000)
    payload = PaymentPayload.model_validate(await signed_payment(payer, local_token, requirements))
    first = await local.settle(payload, requirements)
    assert first.success, first
    again = await local.settle(payload, requirements)
    assert not again.success and again.error_reason == "transaction_failed", again
    receipt = await local.chain.run(local.chain.w3.eth.get_transaction_receipt, again.transaction)
    assert receipt["status"] == 0  # mined, and reverted by the contract
    assert await chain_balance(bus, pay_to) == 250_000
    assert await chain_balance(bus, payer.address) == payer.funded - 250_000
    nonce = bytes.fromhex(payload.payload["authorization"]["nonce"].removeprefix("0x"))
    assert await local.chain.run(local.chain.nonce_used, payer.address, nonce)


async def test_the_contract_checks_signature_window_and_nonce(local: LocalFacilitator, payer: Payer,
                                                              local_token: LocalToken) -> None:
    chain = local.chain
    requirements = local_token.requirements(Account.create().address, 1_000)
    authorization, signature = _authorization(await signed_payment(payer, local_token, requirements))
    await chain.run(_transfer, chain, authorization, signature)  # as signed: it would pass

    with pytest.raises(Exception, match="invalid signature"):
        await chain.run(_transfer, chain, {**authorization, "value": "2000"}, signature)
    with pytest.raises(Exception, match="invalid signature"):
        await chain.run(_transfer, chain, {**authorization, "to": Account.create().address}, signature)
    forged = signature[:40] + bytes([signature[40] ^ 1]) + signature[41:]
    with pytest.raises(Exception, match="invalid signature"):
        await chain.run(_transfer, chain, authorization, forged)
    with pytest.raises(Exception, match="authorization is expired"):
        await chain.run(_transfer, chain, {**authorization, "validBefore": str(int(time.time()) - 60)}, signature)
    with pytest.raises(Exception, match="authorization is not yet valid"):
        await chain.run(_transfer, chain, {**authorization, "validAfter": str(int(time.time()) + 3600)}, signature)


async def test_fund_and_balance_from_the_cli(one: Cli, bus: Any) -> None:  # noqa: F811
    address = Account.create().address
    funded = (await one("x402", "fund", address, "2.5")).ok()
    assert address in funded and "2.500000 (2500000 units)" in funded and "transaction" in funded
    assert await chain_balance(bus, address) == 2_500_000
    shown = (await one("x402", "balance", address, "--json")).json()
    assert (shown["address"], shown["balance"], shown["tx_hash"]) == (address, 2_500_000, None)
    assert shown["network"].startswith("eip155:") and shown["asset"].startswith("0x")
    one_line_error(await one("x402", "fund", address, "0.0000001"), 2, "decimals")
    one_line_error(await one("x402", "fund", address, "0"), 2, "positive")
    one_line_error(await one("x402", "fund", address, "ten"), 2, "not an amount")
    one_line_error(await one("x402", "balance", "0xnot-an-address"), 2, "not an address")
    assert await chain_balance(bus, address) == 2_500_000


def http_facilitator(local: LocalFacilitator, token: str) -> FastAPI:
    """x402's facilitator HTTP API (`/verify`, `/settle`, `/supported`, bearer-protected) over the local chain's."""
    app = FastAPI()

    def check(authorization: str | None) -> None:
        if authorization != f"Bearer {token}":
            raise HTTPException(401, "who are you?")

    @app.post("/verify")
    async def verify(body: dict[str, Any], authorization: str | None = Header(None)) -> dict[str, Any]:
        check(authorization)
        answer = await local.verify(PaymentPayload.model_validate(body["paymentPayload"]),
                                    PaymentRequirements.model_validate(body["paymentRequirements"]))
        return answer.model_dump(by_alias=True, exclude_none=True)

    @app.post("/settle")
    async def settle(body: dict[str, Any], authorization: str | None = Header(None)) -> dict[str, Any]:
        check(authorization)
        answer = await local.settle(PaymentPayload.model_validate(body["paymentPayload"]),
                                    PaymentRequirements.model_validate(body["paymentRequirements"]))
        return answer.model_dump(by_alias=True, exclude_none=True)

    @app.get("/supported")
    async def supported(authorization: str | None = Header(None)) -> dict[str, Any]:
        check(authorization)
        return (await local.supported()).model_dump(by_alias=True, exclude_none=True)

    return app


async def test_with_a_url_commerce_settles_through_an_http_facilitator(
    local: LocalFacilitator, payer: Payer, local_token: LocalToken, settings: Settings, bus: Any
) -> None:
    server = LocalServer(http_facilitator(local, "s3cret"))
    url = await server.start()
    try:
        remote = build_facilitator(CommerceSettings(**settings.model_dump(), commerce_x402_facilitator_url=url,
                                                    commerce_x402_facilitator_api_key="s3cret"))
        assert isinstance(remote, RemoteFacilitator)
        assert [kind.network for kind in (await remote.supported()).kinds] == [local_token.network]
        pay_to = Account.create().address
        requirements = local_token.requirements(pay_to, 5_000)
        payload = PaymentPayload.model_validate(await signed_payment(payer, local_token, requirements))
        assert (await remote.verify(payload, requirements)).is_valid
        settled = await remote.settle(payload, requirements)
        assert settled.success and settled.transaction.startswith("0x"), settled
        assert await chain_balance(bus, pay_to) == 5_000
        await remote.close()

        stranger = RemoteFacilitator(CommerceSettings(**settings.model_dump(), commerce_x402_facilitator_url=url,
                                                      commerce_x402_facilitator_api_key="wrong"))
        with pytest.raises(Unavailable):
            await stranger.verify(payload, requirements)
        await stranger.close()
    finally:
        await server.stop()
    gone = RemoteFacilitator(CommerceSettings(**settings.model_dump(), commerce_x402_facilitator_url=url))
    with pytest.raises(Unavailable):
        await gone.supported()
