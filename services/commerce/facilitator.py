"""The x402 facilitator commerce answers from, chosen by settings: the built-in one on the local chain, or HTTP.

- Local (`commerce_x402_facilitator_url` unset, the default for `make run` and the tests): the official
  `x402FacilitatorSync` with the official exact-EVM facilitator scheme, whose signer talks to the
  in-process EVM (`chain/evm.py`). Registered for the local network only (v2): its signer must never
  be asked to settle on a real chain. Calls run on the chain's thread.
- HTTP (the URL set): the official `HTTPFacilitatorClient` for a real network (Base Sepolia, mainnet).

Both take and give x402's own models. v1 payloads are converted to v2 first (`as_v2`): x402's v1
scheme names networks from a fixed table that cannot hold the local chain, and the checks are the same.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError
from x402 import x402FacilitatorSync
from x402.http.facilitator_client import HTTPFacilitatorClient
from x402.http.facilitator_client_base import AuthHeaders, FacilitatorConfig, FacilitatorResponseError
from x402.mechanisms.evm.constants import ERR_UNSUPPORTED_SCHEME
from x402.mechanisms.evm.exact.facilitator import ExactEvmScheme
from x402.mechanisms.evm.utils import get_asset_info
from x402.mechanisms.evm.v1.constants import V1_NETWORK_CHAIN_IDS
from x402.schemas import PaymentPayload, PaymentRequirements, SettleResponse, SupportedResponse, VerifyResponse

from services.commerce.chain.evm import LocalChain, TokenConfig, local_chain
from services.commerce.settings import CommerceSettings
from shared.contracts.commerce.facilitator import PaymentRefused
from shared.kernel.errors import Unavailable

UNSUPPORTED_NETWORK = "unsupported_network"
"""The reason for a payment on a network this facilitator does not settle."""
UNSUPPORTED_SCHEME = ERR_UNSUPPORTED_SCHEME
"""x402's reason for a payment in a scheme this facilitator does not settle."""


@dataclass(frozen=True)
class Asset:
    """How an asset's atomic units read as money: revenue counts `amount / 10**decimals` in `currency`."""

    currency: str
    decimals: int


class LocalFacilitator:
    """x402's facilitator and exact-EVM scheme on the in-process chain."""

    def __init__(self, chain: LocalChain, v1_network: str) -> None:
        self.chain = chain
        self.v1_names = {v1_network: chain.network}
        self._x402 = x402FacilitatorSync()
        self._x402.register([chain.network], ExactEvmScheme(chain.signer))

    async def verify(self, payload: PaymentPayload, requirements: PaymentRequirements) -> VerifyResponse:
        return await self.chain.run(self._x402.verify, payload, requirements)

    async def settle(self, payload: PaymentPayload, requirements: PaymentRequirements) -> SettleResponse:
        return await self.chain.run(self._x402.settle, payload, requirements)

    async def supported(self) -> SupportedResponse:
        """x402's kinds, the local one's `extra` naming the token a price defaults to (asset, EIP-712 name/version)."""
        supported = self._x402.get_supported()
        token = self.chain.token
        for kind in supported.kinds:
            if kind.network == self.chain.network:
                kind.extra = {"asset": self.chain.asset, "name": token.name, "version": token.version,
                              "symbol": token.symbol, "decimals": 6, "local": True}
        return supported

    def asset(self, network: str, asset: str) -> Asset:
        if network == self.chain.network and asset.lower() == self.chain.asset.lower():
            return Asset(self.chain.token.symbol, 6)
        return known_asset(network, asset)


class RemoteFacilitator:
    """x402's HTTP facilitator client; `supported` is asked once (a sync call, off the event loop)."""

    def __init__(self, settings: CommerceSettings) -> None:
        key = settings.commerce_x402_facilitator_api_key
        auth = _BearerAuth(key.get_secret_value()) if key else None
        self.v1_names: dict[str, str] = {}
        self._client = HTTPFacilitatorClient(FacilitatorConfig(
            url=settings.commerce_x402_facilitator_url or "", timeout=settings.commerce_x402_facilitator_timeout,
            auth_provider=auth))
        self._supported: SupportedResponse | None = None

    async def verify(self, payload: PaymentPayload, requirements: PaymentRequirements) -> VerifyResponse:
        async with _reachable(self._client.url):
            return await self._client.verify(payload, requirements)

    async def settle(self, payload: PaymentPayload, requirements: PaymentRequirements) -> SettleResponse:
        async with _reachable(self._client.url):
            return await self._client.settle(payload, requirements)

    async def supported(self) -> SupportedResponse:
        if self._supported is None:
            async with _reachable(self._client.url):
                self._supported = await asyncio.to_thread(self._client.get_supported)
        return self._supported

    def asset(self, network: str, asset: str) -> Asset:
        return known_asset(network, asset)

    async def close(self) -> None:
        await self._client.aclose()


Facilitator = LocalFacilitator | RemoteFacilitator


class _BearerAuth:
    def __init__(self, token: str) -> None:
        self._headers = {"Authorization": f"Bearer {token}"}

    def get_auth_headers(self) -> AuthHeaders:
        return AuthHeaders(verify=self._headers, settle=self._headers, supported=self._headers)


@asynccontextmanager
async def _reachable(url: str) -> AsyncIterator[None]:
    """An HTTP facilitator that cannot be reached, or answers garbage, is `Unavailable` (a 503), not our bug."""
    try:
        yield
    except (httpx.HTTPError, FacilitatorResponseError, ValueError) as error:
        raise Unavailable(f"the x402 facilitator at {url} did not answer usefully",
                          {"error": str(error)[:300]}) from None


def known_asset(network: str, asset: str) -> Asset:
    """x402's registry of default assets (USDC on Base, ...); an unknown token counts in atomic units of itself."""
    try:
        info = get_asset_info(network, asset)
    except ValueError:
        return Asset(asset.lower(), 0)
    return Asset(info["name"], info["decimals"])


def build_facilitator(settings: CommerceSettings) -> Facilitator:
    """The facilitator the settings name: HTTP when a URL is set, else the local chain's (deployed on first use)."""
    if settings.commerce_x402_facilitator_url:
        return RemoteFacilitator(settings)
    token = TokenConfig(settings.commerce_x402_token_name, settings.commerce_x402_token_symbol,
                        settings.commerce_x402_token_version)
    chain = local_chain(token, Path(settings.data_dir) / "commerce")
    return LocalFacilitator(chain, settings.commerce_x402_v1_network)


def _network(name: str, v1_names: dict[str, str]) -> str:
    """A v1 network name as CAIP-2 (a CAIP-2 id stays as it is; an unknown name too, and is refused later)."""
    if ":" in name:
        return name
    if name in v1_names:
        return v1_names[name]
    chain_id = V1_NETWORK_CHAIN_IDS.get(name)
    return f"eip155:{chain_id}" if chain_id else name


def _requirements(raw: dict[str, Any], v1_names: dict[str, str]) -> PaymentRequirements:
    if "maxAmountRequired" in raw:  # v1 requirements
        raw = {"scheme": raw.get("scheme"), "network": _network(str(raw.get("network")), v1_names),
               "asset": raw.get("asset"), "amount": raw.get("maxAmountRequired"), "payTo": raw.get("payTo"),
               "maxTimeoutSeconds": raw.get("maxTimeoutSeconds"), "extra": raw.get("extra") or {}}
    return PaymentRequirements.model_validate(raw)


def as_v2(payload: dict[str, Any], requirements: dict[str, Any],
          v1_names: dict[str, str]) -> tuple[PaymentPayload, PaymentRequirements]:
    """x402 models of a request's payload and requirements, v1 converted to v2; `PaymentRefused` when malformed."""
    try:
        wanted = _requirements(requirements, v1_names)
        if payload.get("x402Version") == 1:
            accepted = wanted.model_copy(update={"scheme": payload.get("scheme"),
                                                 "network": _network(str(payload.get("network")), v1_names)})
            return PaymentPayload(x402_version=2, payload=payload.get("payload"), accepted=accepted), wanted
        return PaymentPayload.model_validate(payload), wanted
    except (ValidationError, TypeError, ValueError) as error:
        raise PaymentRefused("the payment payload or requirements are not x402's", {"reason": "invalid_payload",
                             "error": str(error)[:500]}) from None

