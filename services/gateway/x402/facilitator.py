"""x402's `FacilitatorClient` over the bus: `verify`/`settle`/`supported` are commerce's facilitator messages.

The official `x402ResourceServer` calls it as it would call an HTTP facilitator; commerce answers from
its configured facilitator (the local chain's, or an HTTP one for a real network) and keeps the replay
store, so every gateway replica agrees on what was paid. The request goes in the seller's org, with the
x402 payment identity (`resources.payment_auth`), tagged with the x402 protocol.

A refusal is an answer (`isValid: false` / `success: false`, the reason x402's); a typed `payment_refused`
error from commerce is turned into one. Anything else (commerce unreachable) is kept in `failure` and
raised by the route after x402 has run, so an outage is a 503, not a 402 that blames the payer.
"""

import time
from typing import Any

from x402.schemas import (
    PaymentPayload,
    PaymentRequirements,
    ResourceInfo,
    SettleResponse,
    SupportedResponse,
    VerifyResponse,
)
from x402.schemas.v1 import PaymentPayloadV1, PaymentRequirementsV1

from shared.contracts.commerce.facilitator import X402_SETTLE, X402_SUPPORTED, X402_VERIFY, PaymentRefused
from shared.kernel.envelope import AuthContext, Protocol
from shared.kernel.errors import OneError


def _dump(model: Any) -> dict[str, Any]:
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")


def _reason(error: OneError) -> str:
    return str(error.details.get("reason") or error.code)


class SupportedCache:
    """The facilitator's `supported` kinds, asked of commerce at most once per `ttl` seconds per replica."""

    def __init__(self, bus: Any, ttl: float) -> None:
        self.bus = bus
        self.ttl = ttl
        self._kept: tuple[float, SupportedResponse] | None = None

    async def get(self, auth: AuthContext) -> SupportedResponse:
        kept = self._kept
        if kept is not None and kept[0] > time.monotonic():
            return kept[1]
        answer = await self.bus.request(X402_SUPPORTED, {}, auth, protocol=Protocol.X402)
        supported = SupportedResponse.model_validate(answer.response)
        self._kept = (time.monotonic() + self.ttl, supported)
        return supported


class BusFacilitator:
    """One paid request's facilitator client: the seller's org, the resource sold, the kinds already fetched."""

    def __init__(self, bus: Any, auth: AuthContext, supported: SupportedResponse, resource: ResourceInfo,
                 product_id: str | None = None) -> None:
        self.bus = bus
        self.auth = auth
        self.supported = supported
        self.resource = resource
        self.product_id = product_id
        self.failure: OneError | None = None

    def get_supported(self) -> SupportedResponse:
        return self.supported

    def _request(self, payload: PaymentPayload | PaymentPayloadV1,
                 requirements: PaymentRequirements | PaymentRequirementsV1) -> dict[str, Any]:
        return {"payment_payload": _dump(payload), "payment_requirements": _dump(requirements),
                "resource": _dump(self.resource), "product_id": self.product_id}

    async def verify(self, payload: PaymentPayload | PaymentPayloadV1,
                     requirements: PaymentRequirements | PaymentRequirementsV1) -> VerifyResponse:
        try:
            answer = await self.bus.request(X402_VERIFY, self._request(payload, requirements), self.auth,
                                            protocol=Protocol.X402)
        except PaymentRefused as refused:
            return VerifyResponse(is_valid=False, invalid_reason=_reason(refused), invalid_message=str(refused))
        except OneError as error:
            self.failure = error
            raise
        return VerifyResponse.model_validate(answer.response)

    async def settle(self, payload: PaymentPayload | PaymentPayloadV1,
                     requirements: PaymentRequirements | PaymentRequirementsV1) -> SettleResponse:
        try:
            answer = await self.bus.request(X402_SETTLE, self._request(payload, requirements), self.auth,
                                            protocol=Protocol.X402)
        except PaymentRefused as refused:
            return SettleResponse(success=False, error_reason=_reason(refused), error_message=str(refused),
                                  transaction="", network=requirements.network)
        except OneError as error:
            self.failure = error
            raise
        return SettleResponse.model_validate(answer.response)
