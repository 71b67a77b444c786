"""x402.*: a paid request at the gateway end to end, and verifications through the resource server.

One process: tenancy, graph and commerce (with its in-process EVM and x402 facilitator), the gateway app on
a local port, and the client. A seller prices a digital product's content; a payer funded on the local chain
pays with payments signed in advance by the official x402 client (signing is the payer's cost, not the
server's), so each timed request is the server's work: x402's checks, commerce's verify (replay store, the
chain's view) and settle (a `transferWithAuthorization` mined on the local EVM, the settlement recorded),
then the content.

- `x402.paid.p50`: sequential paid requests (each a fresh authorization) vs the same route unpaid (a 402 with
  `PAYMENT-REQUIRED` and its `payment_event requested`), same run.
- `x402.verify.rate`: `x402ResourceServer.verify_payment` with the gateway's `BusFacilitator` (over the bus to
  commerce: replay store, facilitator, the `verified` event) vs x402's own `x402FacilitatorSync.verify` with
  the exact EVM facilitator scheme called in-process on the same chain; 16 in flight.
"""

import asyncio
import time
from typing import Any

from tests.bench.harness import Figure, percentile
from tests.bench.rr_processes import settings_for

PREFIX = "x402"
N_PAID = 30
WARMUP = 3
N_VERIFY = 300
IN_FLIGHT = 16
PRICE = 10_000


async def _setup(nats_url: str, db_url: str) -> dict[str, Any]:
    from eth_account import Account as EthAccount

    from services.commerce.app import definition as commerce
    from services.gateway.api import create_app
    from services.gateway.server import serve
    from services.gateway.settings import GatewaySettings
    from services.graph.app import definition as graph
    from shared.contracts.commerce.facilitator import CHAIN_FUND
    from shared.contracts.commerce.x402 import X402_PRICE_SET
    from shared.contracts.graph import THING_CREATE
    from shared.contracts.tenancy import VERIFY_KEY
    from shared.runtime.client import BusClient
    from shared.runtime.service import ServiceRuntime
    from tests.bench.services import start_with_tenancy

    platform = await start_with_tenancy("x402", commerce, nats_url, db_url, 0.0)
    common = settings_for(nats_url, db_url, 0.0)
    await ServiceRuntime(graph, graph.settings(**common.model_dump())).start(migrate=False)
    owner = (await platform.bus.request(VERIFY_KEY, {"key": await platform.new_org_key()})).auth_context()
    product = await platform.bus.request(THING_CREATE, {"type": "digital_product", "name": "bench",
                                                        "properties": {"content": "x" * 200}}, owner)
    price = await platform.bus.request(X402_PRICE_SET, {"resource": f"products/{product.id}/content",
                                                        "amount": PRICE, "pay_to": EthAccount.create().address}, owner)
    payer = EthAccount.create()
    await platform.bus.request(CHAIN_FUND, {"address": payer.address, "amount": PRICE * 10_000}, owner)
    bus = await BusClient.connect(common)
    gateway = await serve(create_app(bus, GatewaySettings(**common.model_dump(), gateway_access_log=False)),
                          "127.0.0.1", 0)
    return {"bus": bus, "price": price, "payer": payer, "url": gateway.url,
            "path": f"/x402/{price.org_slug}/{price.resource}"}


async def _payments(client: Any, required: Any, n: int) -> list[Any]:
    return [await client.create_payment_payload(required) for _ in range(n)]


async def _paid_p50(setup: dict[str, Any], client: Any) -> tuple[float, float]:
    import httpx
    from x402.http.utils import decode_payment_required_header, encode_payment_signature_header

    async with httpx.AsyncClient(base_url=setup["url"], timeout=60) as http:
        first = await http.get(setup["path"])
        required = decode_payment_required_header(first.headers["PAYMENT-REQUIRED"])
        payments = [encode_payment_signature_header(p) for p in await _payments(client, required, N_PAID + WARMUP)]

        async def timed(headers: dict[str, str], status: int) -> float:
            start = time.perf_counter()
            response = await http.get(setup["path"], headers=headers)
            elapsed = (time.perf_counter() - start) * 1e6
            if response.status_code != status:
                raise RuntimeError(f"{response.status_code} {response.text}")
            return elapsed

        unpaid = [await timed({}, 402) for _ in range(N_PAID + WARMUP)][WARMUP:]
        paid = [await timed({"PAYMENT-SIGNATURE": p}, 200) for p in payments][WARMUP:]
    return percentile(paid, 0.5), percentile(unpaid, 0.5)


async def _rate(verify: Any, payloads: list[Any]) -> float:
    remaining = N_VERIFY

    async def worker(i: int) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            answer = await verify(payloads[(remaining + i) % len(payloads)])
            if not answer.is_valid:
                raise RuntimeError(f"not valid: {answer}")

    start = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(IN_FLIGHT)))
    return N_VERIFY / (time.perf_counter() - start)


async def _verify_rates(setup: dict[str, Any], client: Any) -> tuple[float, float]:
    from x402 import x402FacilitatorSync, x402ResourceServer
    from x402.mechanisms.evm.exact import ExactEvmFacilitatorScheme, ExactEvmServerScheme
    from x402.schemas import PaymentRequired, ResourceInfo

    from services.commerce.chain.evm import _chains
    from services.gateway.x402.facilitator import BusFacilitator, SupportedCache
    from services.gateway.x402.paywall import requirements_of
    from services.gateway.x402.resources import payment_auth

    price, bus = setup["price"], setup["bus"]
    auth = payment_auth(price.org_id)
    info = ResourceInfo(url=setup["url"] + setup["path"], description="bench", mime_type="application/json")
    core = x402ResourceServer(BusFacilitator(bus, auth, await SupportedCache(bus, 60).get(auth), info))
    core.register(price.network, ExactEvmServerScheme()).initialize()
    requirements = requirements_of(core, price)
    payloads = await _payments(client, PaymentRequired(x402_version=2, accepts=[requirements], resource=info), 20)

    chain = next(c for c in _chains.values() if c.asset == price.asset)
    facilitator = x402FacilitatorSync().register([chain.network], ExactEvmFacilitatorScheme(chain.signer))

    async def through_server(payload: Any) -> Any:
        return (await core.verify_payment(payload, requirements)).verify

    async def in_process(payload: Any) -> Any:
        return await chain.run(facilitator.verify, payload, requirements)

    return await _rate(through_server, payloads), await _rate(in_process, payloads)


async def run(nats_url: str, db_url: str) -> list[Figure]:
    from x402 import x402Client
    from x402.mechanisms.evm.exact import register_exact_evm_client
    from x402.mechanisms.evm.signers import EthAccountSigner

    setup = await _setup(nats_url, db_url)
    client = register_exact_evm_client(x402Client(), EthAccountSigner(setup["payer"])).set_spend_controls(False)
    paid, unpaid = await _paid_p50(setup, client)
    ours, theirs = await _verify_rates(setup, client)
    return [
        Figure(f"{PREFIX}.paid.p50", paid, "µs", unpaid, f"GET a product's content paid (verify + settle on the local "
               f"EVM) vs the same route unpaid (402); sequential, {N_PAID} each; first measurement sets the target"),
        Figure(f"{PREFIX}.verify.rate", ours, "verifies/s", theirs, f"x402ResourceServer.verify_payment over the bus "
               f"(replay store, verified event) vs x402FacilitatorSync.verify in-process; {IN_FLIGHT} in flight"),
    ]
