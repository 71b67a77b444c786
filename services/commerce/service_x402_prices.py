"""x402 prices: an org prices what it sells over the gateway; the gateway resolves a price without a key.

Setting a price remembers the org's slug (asked of tenancy once: slugs never change) so a paid URL
`/x402/{slug}/...` finds the org. Every change is a `price_event` (`action: changed`, protocol x402);
every 402 the gateway answers is a `payment_event` (`status: requested`) in the seller's org.
Network, asset and the token's EIP-712 domain default to the facilitator's own (`x402.supported`:
the local chain's token in development), so a price can be set with just an amount and a payee.
"""

from decimal import Decimal
from typing import Any

from services.commerce import repository_x402_prices as repository
from services.commerce.repository_x402_prices import PriceRow
from services.commerce.service_x402_facilitator import facilitator_of
from shared.contracts.commerce.facilitator import X402_SUPPORTED
from shared.contracts.commerce.x402 import (
    PaymentRequested,
    Price,
    PriceNotFound,
    PriceQuery,
    PriceRemoved,
    PriceResolve,
    Prices,
    PriceSet,
    PriceTarget,
    Recorded,
    priceable_route,
)
from shared.contracts.tenancy import ORG_GET
from shared.kernel.envelope import Protocol
from shared.kernel.errors import InvalidRequest
from shared.kernel.ontology import EventType
from shared.kernel.ontology.metadata import MetadataProtocol
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext

X402 = MetadataProtocol.X402.value


def _price(row: PriceRow, slug: str) -> Price:
    return Price(**row, org_slug=slug)


async def _defaults(ctx: WorkContext, payload: PriceSet) -> dict[str, Any]:
    """The payload's chain fields, the facilitator's where unset (its first `exact` kind and that kind's `extra`)."""
    given = {"network": payload.network, "asset": payload.asset, "asset_name": payload.asset_name,
             "asset_version": payload.asset_version}
    if all(given.values()):
        return given
    supported = (await ctx.call(X402_SUPPORTED, {}, protocol=Protocol.X402)).response  # the facilitator's protocol
    kinds = [kind for kind in supported.get("kinds", []) if kind.get("scheme") == "exact"
             and payload.network in (None, kind.get("network"))]
    kind = kinds[0] if kinds else {}
    extra = kind.get("extra") or {}
    found = {"network": kind.get("network"), "asset": extra.get("asset"), "asset_name": extra.get("name"),
             "asset_version": extra.get("version")}
    merged = {key: given[key] or found[key] for key in given}
    missing = sorted(key for key, value in merged.items() if not value)
    if missing:
        raise InvalidRequest(f"the facilitator names no default for {', '.join(missing)}: give them",
                             {"missing": missing})
    return merged


async def _slug(ctx: WorkContext) -> str:
    async with ctx.transaction() as tx:
        slug = await repository.seller_slug(tx.session, ctx.auth.org_id)  # type: ignore[arg-type]
    if slug is None:
        slug = (await ctx.call(ORG_GET, {})).slug
    return slug


async def set_price(ctx: WorkContext, payload: PriceSet) -> Price:
    require(ctx.auth, "prices", "update")
    chain = await _defaults(ctx, payload)
    slug = await _slug(ctx)
    route = priceable_route(payload.resource)
    if route is None:  # the payload's validator refused it already
        raise InvalidRequest(f"{payload.resource!r} is no priceable route", {"resource": payload.resource})
    values = {**payload.model_dump(exclude={"network", "asset", "asset_name", "asset_version"}), **chain,
              "method": route.method, "org_id": ctx.auth.org_id, "updated_by": ctx.auth.actor_id}
    async with ctx.transaction() as tx:
        session = tx.session
        await repository.remember_seller(session, ctx.auth.org_id, slug)  # type: ignore[arg-type]
        row = await repository.upsert(session, values)  # type: ignore[arg-type]
        await tx.emit(EventType.PRICE_EVENT, metadata={
            "action": "changed", "protocol": X402, "resource": row["resource"], "method": row["method"],
            "amount": row["amount"],
            "asset": row["asset"], "network": row["network"], "payTo": row["pay_to"]})
    return _price(row, slug)


async def list_prices(ctx: WorkContext, payload: PriceQuery) -> Prices:
    require(ctx.auth, "prices", "list")
    session = ctx.session
    slug = await repository.seller_slug(session, ctx.auth.org_id) or ""  # type: ignore[arg-type]
    rows = await repository.page(session, ctx.auth.org_id, payload.limit)  # type: ignore[arg-type]
    return Prices(prices=[_price(row, slug) for row in rows])


async def delete_price(ctx: WorkContext, payload: PriceTarget) -> PriceRemoved:
    require(ctx.auth, "prices", "delete")
    row = await repository.delete(ctx.session, ctx.auth.org_id, payload.resource)  # type: ignore[arg-type]
    if row is None:
        raise PriceNotFound(f"no price for {payload.resource!r}", {"resource": payload.resource})
    await ctx.emit(EventType.PRICE_EVENT, metadata={"action": "changed", "protocol": X402,
                                                     "resource": row["resource"], "deleted": True})
    return PriceRemoved(resource=row["resource"], deleted=True)


async def resolve_price(ctx: WorkContext, payload: PriceResolve) -> Price:
    """The price a paid URL names, for anyone: a seller's prices are public (they are in every 402 it answers).
    The path's own price, else its route's (`route`, the allow-listed template the gateway matched)."""
    db = ctx.runtime.db
    async with db.transaction() as session:
        seller = await repository.seller_org(session, payload.org)
    row = None
    if seller is not None:
        async with db.transaction(seller[0]) as session:
            row = await repository.matching(session, seller[0], payload.resource, payload.route)
    if seller is None or row is None:
        raise PriceNotFound(f"{payload.org!r} sells no {payload.resource!r}",
                            {"org": payload.org, "resource": payload.resource})
    return _price(row, seller[1])


async def record_requested(ctx: WorkContext, payload: PaymentRequested) -> Recorded:
    """The 402 as a `payment_event` `requested`, shaped as the facilitator's `verified`/`processed` are: `amount` in
    money of the asset (atomic / 10**decimals, in `currency`), `amountAtomic`, `resource` the URL."""
    require(ctx.auth, "payments", "request")
    asset = facilitator_of(ctx.runtime).asset(payload.network, payload.asset)
    metadata: dict[str, Any] = {
        "status": "requested", "protocol": X402, "scheme": "exact", "network": payload.network,
        "asset": payload.asset, "amount": str(Decimal(payload.amount).scaleb(-asset.decimals).normalize()),
        "currency": asset.currency, "amountAtomic": str(payload.amount), "payTo": payload.pay_to,
        "resource": payload.url, "pricedResource": payload.resource}
    if payload.reason:
        metadata["reason"] = payload.reason
    envelope = await ctx.emit(EventType.PAYMENT_EVENT, metadata=metadata)
    return Recorded(event_id=envelope.id)
