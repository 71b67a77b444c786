"""Sell a digital product per download with x402, and buy it with the official x402 client.

As the seller (your org, `ONE_API_KEY`): a `digital_product` with content, a price for it (0.01 of the local
chain's 6-decimal token, paid to an address of yours), and test tokens minted to a fresh buyer wallet. As the
buyer (no API key: a wallet): `GET /x402/{your slug}/products/{id}/content` through x402's httpx transport,
which answers the 402 by signing an EIP-3009 authorization; the gateway verifies and settles it through
commerce's facilitator on the local EVM, then serves the content with a `PAYMENT-RESPONSE` receipt.
Paying needs the gateway: set `ONE_URL` (over the bus alone, the example prices and funds, and stops).
"""

import asyncio
import os

import httpx
from eth_account import Account
from x402 import x402Client
from x402.http.clients.httpx import x402AsyncTransport
from x402.http.utils import decode_payment_response_header
from x402.mechanisms.evm.exact import register_exact_evm_client
from x402.mechanisms.evm.signers import EthAccountSigner

from shared.contracts.commerce.facilitator import CHAIN_BALANCE, CHAIN_FUND
from shared.contracts.commerce.x402 import X402_PRICE_SET
from shared.tools.sdk import One

PRICE = 10_000  # atomic units: 0.01 of a 6-decimal token


async def main() -> None:
    async with await One.connect() as one:
        guide = await one.things.create("digital_product", "Field guide",
                                        properties={"content": "Bees dance to say where the flowers are."})
        merchant = Account.create().address  # where the org is paid (keep its key in real life)
        price = await one.request(X402_PRICE_SET, {"resource": f"products/{guide.id}/content", "amount": PRICE,
                                                   "pay_to": merchant, "description": "The field guide"})
        path = f"/x402/{price.org_slug}/{price.resource}"
        print(f"selling {path} for {PRICE} units of {price.asset} on {price.network}")
        buyer = Account.create()
        await one.request(CHAIN_FUND, {"address": buyer.address, "amount": 100 * PRICE})

        base = os.environ.get("ONE_URL")
        if not base:
            print("set ONE_URL (the gateway) to pay for it over HTTP")
            return
        client = register_exact_evm_client(x402Client(), EthAccountSigner(buyer)).set_spend_controls(
            {"allowed_assets": [{"network": price.network, "asset": price.asset, "max_amount_per_payment": str(PRICE)}]})
        async with httpx.AsyncClient(base_url=base, timeout=60) as plain:
            unpaid = await plain.get(path)
            print(f"without paying: {unpaid.status_code} ({unpaid.json()['detail']})")
        async with httpx.AsyncClient(base_url=base, timeout=60, transport=x402AsyncTransport(client)) as paying:
            paid = await paying.get(path)
        paid.raise_for_status()
        receipt = decode_payment_response_header(paid.headers["PAYMENT-RESPONSE"])
        print(f"paid: {paid.json()['content']!r} (transaction {receipt.transaction})")
        spent = 100 * PRICE - (await one.request(CHAIN_BALANCE, {"address": buyer.address})).balance
        earned = (await one.request(CHAIN_BALANCE, {"address": merchant})).balance
        print(f"on the chain: the buyer spent {spent}, the org earned {earned}")
        assert spent == earned == PRICE


if __name__ == "__main__":
    asyncio.run(main())
