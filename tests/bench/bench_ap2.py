"""ap2.*: AP2 v2 closed-mandate chains verified by a merchant through the bus.

One process: tenancy, graph and commerce. A merchant org trusts a credential provider; each purchase is a
fresh checkout and a chain (a fresh open mandate, closed for that checkout) built in advance with `sd-jwt`
and `jwcrypto` (building is the buyer's cost, not the merchant's), so each timed request is the merchant's
work: commerce's chain verification (two ES256 signatures, disclosures, key binding), the nonce, the
constraints under the mandate's row lock, the signed receipt, the events and the mandate things.

- `ap2.verify.rate`: `ap2.mandate.present` over the bus vs the same chains' signatures and key binding verified
  by direct `sd-jwt` (`SDJWTVerifier`) / `jwcrypto` calls in-process; 16 in flight.
"""

import asyncio
import time
from typing import Any

from tests.bench.harness import Figure
from tests.bench.rr_processes import settings_for

PREFIX = "ap2"
N_VERIFY = 200
IN_FLIGHT = 16
RANGE = {"type": "payment.amount_range", "currency": "USD", "max": 5000}


async def _setup(nats_url: str, db_url: str) -> dict[str, Any]:
    from services.commerce.app import definition as commerce
    from services.graph.app import definition as graph
    from shared.contracts.commerce.ap2 import AP2_CHECKOUT_CREATE, AP2_TRUST_ADD
    from shared.contracts.tenancy import VERIFY_KEY
    from shared.runtime.service import ServiceRuntime
    from tests.ap2.chains import Purchase, close, jwks, key, open_mandate
    from tests.bench.services import start_with_tenancy

    platform = await start_with_tenancy("ap2", commerce, nats_url, db_url, 0.0)
    common = settings_for(nats_url, db_url, 0.0)
    graph_runtime = ServiceRuntime(graph, graph.settings(**common.model_dump()))
    await graph_runtime.start(migrate=False)
    platform.runtimes.append(graph_runtime)
    owner = (await platform.bus.request(VERIFY_KEY, {"key": await platform.new_org_key()})).auth_context()
    issuer, agent = key("cp-bench"), key("agent-bench")
    await platform.bus.request(AP2_TRUST_ADD, {"issuer": "https://cp.bench", "jwks": jwks(issuer)}, owner)
    purchases = []
    for _ in range(N_VERIFY):
        made = await platform.bus.request(AP2_CHECKOUT_CREATE, {"amount": 1000, "currency": "USD"}, owner)
        purchase = Purchase(made.merchant_id, made.checkout_hash, made.nonce, 1000, id=made.id)
        purchases.append((purchase, close(open_mandate(issuer, agent, [RANGE]), agent, purchase)))
    return {"platform": platform, "bus": platform.bus, "owner": owner, "purchases": purchases, "issuer": issuer}


async def _rate(call: Any, items: list[Any]) -> float:
    queue = list(items)

    async def worker() -> None:
        while queue:
            await call(queue.pop())

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    return len(items) / (time.perf_counter() - start)


def _direct(issuer: Any, chain: str) -> None:
    """The chain's two signatures and its key binding, checked with sd-jwt and jwcrypto directly."""
    import base64
    import hashlib

    from jwcrypto.jwk import JWK
    from sd_jwt.verifier import SDJWTVerifier

    root, hop = chain.split("~~")
    root += "~"
    opened = SDJWTVerifier(root, lambda _iss, _header: issuer).get_verified_payload()
    holder = JWK(**opened["delegate_payload"][0]["cnf"]["jwk"])
    closed = SDJWTVerifier(hop, lambda _iss, _header: holder).get_verified_payload()
    expected = base64.urlsafe_b64encode(hashlib.sha256(root.encode()).digest()).rstrip(b"=").decode()
    if closed["sd_hash"] != expected:
        raise RuntimeError("broken key binding")


async def run(nats_url: str, db_url: str) -> list[Figure]:
    from shared.contracts.commerce.ap2 import AP2_PRESENT
    from shared.kernel.envelope import Protocol

    setup = await _setup(nats_url, db_url)
    bus, owner, issuer = setup["bus"], setup["owner"], setup["issuer"]

    async def through_bus(item: tuple[Any, str]) -> None:
        purchase, chain = item
        await bus.request(AP2_PRESENT, {"checkout_id": str(purchase.id), "mandate": chain}, owner,
                          protocol=Protocol.AP2)

    async def in_process(item: tuple[Any, str]) -> None:
        _direct(issuer, item[1])

    try:
        ours = await _rate(through_bus, setup["purchases"])
        theirs = await _rate(in_process, setup["purchases"])
    finally:
        await setup["platform"].stop()  # its services end cleanly, not cancelled when the loop closes
    return [Figure(f"{PREFIX}.verify.rate", ours, "verifies/s", theirs, f"ap2.mandate.present over the bus "
                   f"(chain, nonce, constraints, receipt, events, mandate things) vs the chain's signatures and key "
                   f"binding by direct sd-jwt/jwcrypto calls in-process; {IN_FLIGHT} in flight")]
