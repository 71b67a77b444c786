"""One paid request through the official x402 resource server: 402, or verify → settle → serve.

Per request, an `x402ResourceServer` (exact EVM scheme, `BusFacilitator`) and an `x402HTTPResourceServer`
with one route, the price, are built from what commerce says now (cheap: no I/O, the facilitator's kinds
are cached). The package does the protocol: it reads `PAYMENT-SIGNATURE`, builds the requirements and the
base64 `PAYMENT-REQUIRED`, matches the payload to them, verifies, settles, and writes `PAYMENT-RESPONSE`.

**Money before goods.** x402 verifies (`process_http_request`), then we settle (`process_settlement`) and
only then serve: a request is served once the transfer is on the chain (a pure read is read before and
held: nothing of it leaves before the settlement; a stream's first byte comes after it). Verify → serve →
settle (x402's middleware order) would hand out the goods and then settle a payment that a racing replica,
a moved balance or an expiring authorization can still fail. What is sold is checked first (`Sold.precheck`), so
a payer is not charged for a 404; if serving still fails after the settlement, the error goes back with
the `PAYMENT-RESPONSE` receipt (the transaction) so the payer can ask the seller for a refund.

**v1 headers.** `X-PAYMENT` is read when `PAYMENT-SIGNATURE` is absent (parsed by x402's own decoder): a v2
payload as it is; a v1 payload (`scheme`/`network` at the top) is paired with the requirement it claims,
and the facilitator then checks its signature against exactly that. Its answer carries `X-PAYMENT-RESPONSE`
beside `PAYMENT-RESPONSE`.
"""

import logging
from typing import Any

from fastapi import Request
from starlette.responses import JSONResponse, Response
from x402 import x402ResourceServer
from x402.http import HTTPRequestContext, PaymentOption, RouteConfig, x402HTTPResourceServer
from x402.http.constants import (
    PAYMENT_REQUIRED_HEADER,
    PAYMENT_RESPONSE_HEADER,
    PAYMENT_SIGNATURE_HEADER,
    X_PAYMENT_HEADER,
    X_PAYMENT_RESPONSE_HEADER,
)
from x402.http.middleware.fastapi import FastAPIAdapter
from x402.http.utils import (
    decode_payment_required_header,
    decode_payment_response_header,
    decode_payment_signature_header,
    encode_payment_signature_header,
)
from x402.mechanisms.evm.exact import ExactEvmServerScheme
from x402.mechanisms.evm.v1.constants import V1_NETWORK_CHAIN_IDS
from x402.schemas import PaymentPayload, PaymentRequirements, ResourceInfo
from x402.schemas.v1 import PaymentPayloadV1
from x402.server import ResourceConfig

from services.gateway.problems import one_error_response, problem_response
from services.gateway.x402.facilitator import BusFacilitator
from services.gateway.x402.resources import Sold, payment_auth
from shared.contracts.commerce.x402 import X402_REQUESTED, Price
from shared.kernel.envelope import Protocol
from shared.kernel.errors import OneError

log = logging.getLogger(__name__)


class PaidRequestAdapter(FastAPIAdapter):
    """The request as x402 reads it, with a v1 `X-PAYMENT` standing in for `PAYMENT-SIGNATURE`."""

    def __init__(self, request: Request, signature: str | None) -> None:
        super().__init__(request)
        self.signature = signature

    def get_header(self, name: str) -> str | None:
        if name.lower() == PAYMENT_SIGNATURE_HEADER.lower():
            return self.signature
        return super().get_header(name)


def _v1_as_v2(header: str, requirements: PaymentRequirements) -> str:
    """An `X-PAYMENT` value as a v2 `PAYMENT-SIGNATURE` value (unreadable ones are left for x402 to refuse)."""
    try:
        payload = decode_payment_signature_header(header)
    except (ValueError, TypeError, AttributeError):  # not base64, not JSON, not a payload: x402 refuses it
        return header
    if isinstance(payload, PaymentPayloadV1):
        network = payload.network
        if ":" not in network:  # a v1 name: x402's table, else (a local chain's name) the price's own network
            chain_id = V1_NETWORK_CHAIN_IDS.get(network)
            network = f"eip155:{chain_id}" if chain_id else requirements.network
        claimed = requirements.model_copy(update={"scheme": payload.scheme, "network": network})
        return encode_payment_signature_header(PaymentPayload(payload=payload.payload, accepted=claimed))
    return header


def _reason(headers: dict[str, str]) -> str:
    """Why x402 answered 402: the settlement's error, else the `PAYMENT-REQUIRED` error."""
    try:
        if PAYMENT_RESPONSE_HEADER in headers:
            settled = decode_payment_response_header(headers[PAYMENT_RESPONSE_HEADER])
            return settled.error_reason or settled.error_message or "settlement failed"
        if PAYMENT_REQUIRED_HEADER in headers:
            return decode_payment_required_header(headers[PAYMENT_REQUIRED_HEADER]).error or "payment required"
    except Exception:  # our own headers, just made: unreadable only if x402 changed
        log.exception("x402: could not read back the 402 headers")
    return "payment required"


def option_of(price: Price) -> PaymentOption:
    """The price as x402's payment option: exact scheme, the asset in atomic units, its EIP-712 domain."""
    return PaymentOption(scheme="exact", pay_to=price.pay_to, network=price.network,
                         max_timeout_seconds=price.max_timeout_seconds,
                         price={"amount": str(price.amount), "asset": price.asset, "extra": price.requirement_extra()})


def requirements_of(core: x402ResourceServer, price: Price) -> PaymentRequirements:
    """The requirements x402 advertises for the price (as `x402HTTPResourceServer` builds them from the option)."""
    option = option_of(price)
    return core.build_payment_requirements(ResourceConfig(
        scheme=option.scheme, pay_to=option.pay_to, price=option.price, network=option.network,
        max_timeout_seconds=option.max_timeout_seconds, extra=option.extra))[0]


class Paywall:
    """Sells one priced resource for one request."""

    def __init__(self, request: Request, price: Price, sold: Sold, args: dict[str, Any]) -> None:
        self.request = request
        self.price = price
        self.sold = sold
        self.args = args
        self.edge = request.app.state.x402
        self.bus = request.app.state.bus
        self.auth = payment_auth(price.org_id)
        self.v1 = False

    def _route(self) -> RouteConfig:
        price = self.price
        return RouteConfig(accepts=option_of(price), resource=str(self.request.url), mime_type=price.mime_type,
                           description=price.description or price.resource)

    async def _server(self, info: ResourceInfo) -> tuple[x402HTTPResourceServer, x402ResourceServer, BusFacilitator]:
        supported = await self.edge.supported.get(self.auth)
        product = self.args.get(self.sold.product_arg) if self.sold.product_arg else None
        facilitator = BusFacilitator(self.bus, self.auth, supported, info, product)
        core = x402ResourceServer(facilitator).register(self.price.network, ExactEvmServerScheme())
        http = x402HTTPResourceServer(core, {"*": self._route()})
        http.initialize()
        return http, core, facilitator

    def _signature(self, core: x402ResourceServer) -> str | None:
        """The payment sent: `PAYMENT-SIGNATURE`, else v1's `X-PAYMENT`; a v1 payload in either is made v2."""
        headers = self.request.headers
        signature = headers.get(PAYMENT_SIGNATURE_HEADER)
        if signature is None:
            signature = headers.get(X_PAYMENT_HEADER)
            self.v1 = signature is not None
        if signature is None:
            return None
        return _v1_as_v2(signature, requirements_of(core, self.price))

    async def sell(self) -> Response:
        info = ResourceInfo(url=str(self.request.url), description=self.price.description or self.price.resource,
                            mime_type=self.price.mime_type)
        http, core, facilitator = await self._server(info)
        signature = self._signature(core)
        held: list[Any] = []  # a pure read, read before the payer is charged and sent once paid
        if signature is not None and self.sold.read_only:
            held.append(await self._serve())
        elif signature is not None and self.sold.precheck is not None:
            await self.sold.precheck(self.bus, self.sold.auth(self.price.org_id), self.args)
        context = HTTPRequestContext(adapter=PaidRequestAdapter(self.request, signature), path=self.request.url.path,
                                     method=self.request.method, payment_header=signature)
        result = await http.process_http_request(context)
        if facilitator.failure is not None:
            raise facilitator.failure
        if result.type != "payment-verified":
            return await self._refused(result.response.headers if result.response else {},
                                       result.response.status if result.response else 402, signature is not None)
        settled = await http.process_settlement(result.payment_payload, result.payment_requirements,
                                                context=context, declared_extensions=result.declared_extensions)
        if facilitator.failure is not None:
            raise facilitator.failure
        if not settled.success:
            return await self._refused(settled.response.headers if settled.response else settled.headers, 402, True)
        receipt = self._receipt(settled.headers)
        try:
            body = held[0] if held else await self._serve()
        except OneError as error:
            failed = one_error_response(self.request, error)
            failed.headers.update(receipt)
            return failed
        if isinstance(body, Response):  # a stream: paid before its first byte, the receipt on its headers
            body.headers.update(receipt)
            return body
        return JSONResponse(body, headers={**receipt, "Cache-Control": "private, no-store"})

    async def _serve(self) -> Any:
        return await self.sold.serve(self.bus, self.sold.auth(self.price.org_id), self.args)

    def _receipt(self, headers: dict[str, str]) -> dict[str, str]:
        receipt = {k: v for k, v in headers.items() if k == PAYMENT_RESPONSE_HEADER}
        if self.v1 and PAYMENT_RESPONSE_HEADER in receipt:
            receipt[X_PAYMENT_RESPONSE_HEADER] = receipt[PAYMENT_RESPONSE_HEADER]
        return receipt

    async def _refused(self, headers: dict[str, str], status: int, paid: bool) -> Response:
        """x402's refusal with our problem body; a 402 is recorded as a `payment_event` requested."""
        reason = _reason(headers)
        kept = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        if self.v1:
            kept.update(self._receipt(headers))
        if status == 402:
            price = self.price
            await self.bus.request(X402_REQUESTED, {
                "resource": price.resource, "url": str(self.request.url)[:2000], "amount": price.amount,
                "asset": price.asset, "network": price.network, "pay_to": price.pay_to,
                "reason": reason[:500] if paid else None}, self.auth, protocol=Protocol.X402)
        code = "payment_required" if status == 402 else "payment_error"
        return problem_response(self.request, status, code, reason, {"reason": reason}, kept)
