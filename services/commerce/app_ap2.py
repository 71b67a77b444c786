"""Subscribers for AP2 v2 (`one.proto.ap2.*`): payload -> service call -> result."""

from services.commerce import (
    service_ap2,
    service_ap2_acp,
    service_ap2_agent,
    service_ap2_held,
    service_ap2_issuer,
    service_ap2_present,
    service_ap2_v1,
)
from shared.contracts.commerce.ap2 import (
    AP2_ACP_CHECKOUT,
    AP2_CHECKOUT_CREATE,
    AP2_CLOSE,
    AP2_GRANT,
    AP2_HELD,
    AP2_JWKS,
    AP2_MANDATE_LIST,
    AP2_PRESENT,
    AP2_RECEIPT_GET,
    AP2_RECEIPT_LIST,
    AP2_RELEASE,
    AP2_REVOKE,
    AP2_TRUST_ADD,
    AP2_TRUST_LIST,
    AP2_V1_ACCEPT,
    AcpCheckoutSign,
    Ap2Checkout,
    CheckoutCreate,
    ClosedMandate,
    GrantedMandate,
    HeldList,
    HeldMandates,
    Jwks,
    JwksGet,
    MandateClose,
    MandateGrant,
    MandateList,
    MandatePresent,
    MandateRelease,
    MandateRevoke,
    Mandates,
    Receipt,
    ReceiptGet,
    ReceiptList,
    Receipts,
    ReleasedMandate,
    RevokedMandate,
    TrustAdd,
    TrustedIssuer,
    TrustedIssuers,
    TrustList,
    V1Mandate,
    V1MandateAccept,
)
from shared.runtime.context import WorkContext
from shared.runtime.handlers import ServiceRouter

ap2_router = ServiceRouter("commerce")


@ap2_router.handler(AP2_TRUST_ADD)
async def trust_add(ctx: WorkContext, payload: TrustAdd) -> TrustedIssuer:
    return await service_ap2.trust_add(ctx, payload)


@ap2_router.handler(AP2_TRUST_LIST)
async def trust_list(ctx: WorkContext, payload: TrustList) -> TrustedIssuers:
    return await service_ap2.trust_list(ctx)


@ap2_router.handler(AP2_JWKS)
async def jwks(ctx: WorkContext, payload: JwksGet) -> Jwks:
    return await service_ap2.jwks(ctx, payload)


@ap2_router.handler(AP2_CHECKOUT_CREATE)
async def create_checkout(ctx: WorkContext, payload: CheckoutCreate) -> Ap2Checkout:
    return await service_ap2.create_checkout(ctx, payload)


@ap2_router.handler(AP2_PRESENT, transactional=False)
async def present(ctx: WorkContext, payload: MandatePresent) -> Receipt:
    return await service_ap2_present.present(ctx, payload)


@ap2_router.handler(AP2_RECEIPT_GET)
async def get_receipt(ctx: WorkContext, payload: ReceiptGet) -> Receipt:
    return await service_ap2.get_receipt(ctx, payload)


@ap2_router.handler(AP2_GRANT, transactional=False)
async def grant(ctx: WorkContext, payload: MandateGrant) -> GrantedMandate:
    return await service_ap2_issuer.grant(ctx, payload)


@ap2_router.handler(AP2_CLOSE, transactional=False)
async def close(ctx: WorkContext, payload: MandateClose) -> ClosedMandate:
    return await service_ap2_agent.close(ctx, payload)


@ap2_router.handler(AP2_RELEASE, transactional=False)
async def release(ctx: WorkContext, payload: MandateRelease) -> ReleasedMandate:
    return await service_ap2_agent.release(ctx, payload)


@ap2_router.handler(AP2_REVOKE)
async def revoke(ctx: WorkContext, payload: MandateRevoke) -> RevokedMandate:
    return await service_ap2_issuer.revoke(ctx, payload)


@ap2_router.handler(AP2_V1_ACCEPT, transactional=False)
async def accept_v1(ctx: WorkContext, payload: V1MandateAccept) -> V1Mandate:
    return await service_ap2_v1.accept(ctx, payload)


@ap2_router.handler(AP2_MANDATE_LIST)
async def list_mandates(ctx: WorkContext, payload: MandateList) -> Mandates:
    return await service_ap2.list_mandates(ctx, payload)


@ap2_router.handler(AP2_RECEIPT_LIST)
async def list_receipts(ctx: WorkContext, payload: ReceiptList) -> Receipts:
    return await service_ap2.list_receipts(ctx, payload)


@ap2_router.handler(AP2_HELD)
async def held(ctx: WorkContext, payload: HeldList) -> HeldMandates:
    return await service_ap2_held.held(ctx, payload)


@ap2_router.handler(AP2_ACP_CHECKOUT)
async def checkout_for_acp_session(ctx: WorkContext, payload: AcpCheckoutSign) -> Ap2Checkout:
    return await service_ap2_acp.checkout_for_session(ctx, payload)
