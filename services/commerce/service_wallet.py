"""Org wallets: create one, set what each agent may spend, sign a payment within that, record how it ended.

Only the agents service acting for an agent (`service:agents`, the agent as actor) gets a signature, and
only for that agent's budget: a person, a key or another service cannot make the wallet sign. The
budget is checked and the spend reserved in the transaction that signs (repository_wallet.py says how
two concurrent signs are kept apart); the payer's `payment_event`s say `direction: outgoing` (revenue
by protocol must leave those out: they are the buyer's spending, not its income).
"""

from decimal import Decimal
from typing import Any
from uuid import UUID

from services.commerce import keys, repository_wallet as repo, wallet
from services.commerce.repository_wallet import BudgetRow, SpendRow, WalletRow
from services.commerce.service_x402_facilitator import facilitator_of
from shared.contracts.agents import AGENT_GET
from shared.contracts.commerce.wallet import (
    Budget,
    BudgetExceeded,
    BudgetQuery,
    BudgetSet,
    Signature,
    SignatureRefused,
    Spend,
    Wallet,
    WalletReceipt,
    WalletSign,
)
from shared.kernel.envelope import AuthContext
from shared.kernel.errors import Conflict, Forbidden, NotFound
from shared.kernel.ids import uuid7
from shared.kernel.ontology import EventType
from shared.kernel.rbac import require
from shared.runtime.context import WorkContext

PAYING_ROLE = "service:agents"
"""Whose requests the wallet signs: the agents service, acting for the paying agent."""


def _wallet(row: WalletRow, created: bool = False) -> Wallet:
    return Wallet(org_id=row.org_id, address=row.address, created=created, created_at=row.created_at)


def _budget(row: BudgetRow, spent: int) -> Budget:
    return Budget(agent_id=row.agent_id, per_call=row.per_call, per_day=row.per_day, asset=row.asset,
                  spent_last_day=spent, updated_at=row.updated_at)


def _spend(row: SpendRow) -> Spend:
    return Spend(id=row.id, agent_id=row.agent_id, amount=row.amount, asset=row.asset, network=row.network,
                 pay_to=row.pay_to, nonce=row.nonce, resource=row.resource, status=row.status, tx_hash=row.tx_hash,
                 created_at=row.created_at)


def _require_paying_agent(auth: AuthContext, agent_id: UUID) -> None:
    require(auth, "wallets", "sign")
    if auth.role != PAYING_ROLE or auth.actor_id != agent_id:
        raise Forbidden("the wallet signs only for an agent's own payment, asked by the agents service",
                        {"agent_id": str(agent_id)})


async def create_wallet(ctx: WorkContext) -> Wallet:
    """The org's wallet, made now if it has none (idempotent: a second create answers the first's)."""
    require(ctx.auth, "wallets", "create")
    org_id = ctx.auth.org_id
    existing = await repo.get_wallet(ctx.session, org_id)
    if existing is not None:
        return _wallet(existing)
    address, key = wallet.new_key()
    sealed = await keys.seal(ctx.runtime, keys.WALLET_KEY, org_id, key)
    row = await repo.insert_wallet(ctx.session, org_id, address, sealed, ctx.auth.actor_id)
    if row is None:  # a concurrent create committed first
        return _wallet(await repo.get_wallet(ctx.session, org_id))
    await ctx.emit(EventType.SETTINGS_UPDATED, metadata={"setting": "x402.wallet", "action": "created",
                                                         "address": address, "protocol": "x402"})
    return _wallet(row, created=True)


async def get_wallet(ctx: WorkContext) -> Wallet:
    require(ctx.auth, "wallets", "read")
    row = await repo.get_wallet(ctx.session, ctx.auth.org_id)
    if row is None:
        raise NotFound("this organization has no wallet yet (`one x402 wallet create`)")
    return _wallet(row)


async def set_budget(ctx: WorkContext, payload: BudgetSet) -> Budget:
    """Set an agent's budget (the agent must exist in the org: asked of the agents service first)."""
    require(ctx.auth, "wallets", "update")
    await ctx.call(AGENT_GET, {"id": str(payload.agent_id)})
    async with ctx.transaction() as tx:
        row = await repo.upsert_budget(tx.session, tx.auth.org_id, payload.agent_id, payload.per_call,
                                       payload.per_day, payload.asset, tx.auth.actor_id)
        spent = await repo.spent_last_day(tx.session, tx.auth.org_id, payload.agent_id)
        await tx.emit(EventType.SETTINGS_UPDATED, target_id=payload.agent_id, metadata={
            "setting": "x402.budget", "agentId": str(payload.agent_id), "perCall": str(payload.per_call),
            "perDay": str(payload.per_day), "asset": payload.asset, "protocol": "x402"})
    return _budget(row, spent)


async def get_budget(ctx: WorkContext, payload: BudgetQuery) -> Budget:
    require(ctx.auth, "wallets", "read")
    row = await repo.get_budget(ctx.session, ctx.auth.org_id, payload.agent_id)
    if row is None:
        raise NotFound("this agent has no budget: it may not pay", {"agent_id": str(payload.agent_id)})
    return _budget(row, await repo.spent_last_day(ctx.session, ctx.auth.org_id, payload.agent_id))


def _within_budget(budget: BudgetRow | None, spent: int, amount: int, asset: str) -> None:
    if budget is None:
        raise BudgetExceeded("this agent has no budget: it may not pay", {"limit": "none"})
    if budget.asset is not None and budget.asset.lower() != asset.lower():
        raise SignatureRefused("this agent's budget is for another asset", {"reason": "asset_not_allowed",
                                                                            "asset": budget.asset})
    if amount > budget.per_call:
        raise BudgetExceeded(f"the price {amount} is over the agent's per-call budget of {budget.per_call}",
                             {"limit": "per_call", "amount": amount, "budget": budget.per_call})
    if spent + amount > budget.per_day:
        raise BudgetExceeded(f"paying {amount} would take the agent over its budget of {budget.per_day} a day "
                             f"({spent} spent in the last 24 hours)",
                             {"limit": "per_day", "amount": amount, "budget": budget.per_day, "spent": spent})


async def sign(ctx: WorkContext, payload: WalletSign) -> Signature:
    """Sign the agent's EIP-3009 transfer if its budget allows it; the spend is reserved in the same transaction."""
    _require_paying_agent(ctx.auth, payload.agent_id)
    org_id, settings = ctx.auth.org_id, ctx.runtime.settings
    row = await repo.get_wallet(ctx.session, org_id)
    if row is None:
        raise NotFound("this organization has no wallet yet (`one x402 wallet create`)")
    transfer = wallet.transfer_of(payload.domain, payload.primary_type, payload.message, row.address,
                                  settings.commerce_wallet_max_validity)
    budget = await repo.get_budget(ctx.session, org_id, payload.agent_id, lock=True)
    _within_budget(budget, await repo.spent_last_day(ctx.session, org_id, payload.agent_id), transfer.amount,
                   transfer.asset)
    spend = await repo.insert_spend(ctx.session, {
        "id": uuid7(), "org_id": org_id, "agent_id": payload.agent_id, "amount": transfer.amount,
        "asset": transfer.asset, "network": transfer.network, "pay_to": transfer.pay_to, "nonce": transfer.nonce,
        "valid_before": transfer.valid_before, "resource": payload.resource})
    if spend is None:
        raise SignatureRefused("this nonce was signed before", {"reason": "nonce_reused"})
    try:
        key = await keys.open_sealed(ctx.runtime, keys.WALLET_KEY, org_id, row.key_sealed)
    except (ValueError, LookupError):
        raise Conflict("the wallet's key cannot be opened (was the commerce wallet secret or key file changed?)"
                       ) from None
    signature = wallet.sign_transfer(key, transfer)
    await ctx.emit(EventType.PAYMENT_EVENT, metadata=_payment_metadata(ctx, spend, "requested"))
    return Signature(spend_id=spend.id, signature=signature, address=row.address)


def _payment_metadata(ctx: WorkContext, spend: SpendRow, status: str, **more: Any) -> dict[str, Any]:
    """Like the merchant's (service_x402_facilitator.py): `amount` as money in `currency`, `amountAtomic` exact."""
    asset = facilitator_of(ctx.runtime).asset(spend.network, spend.asset)
    return {"status": status, "protocol": "x402", "direction": "outgoing",
            "amount": str(Decimal(spend.amount).scaleb(-asset.decimals).normalize()), "currency": asset.currency,
            "amountAtomic": str(spend.amount), "asset": spend.asset, "network": spend.network, "payTo": spend.pay_to,
            "resource": spend.resource, "agentId": str(spend.agent_id), "spendId": str(spend.id), **more}


async def record_receipt(ctx: WorkContext, payload: WalletReceipt) -> Spend:
    """Record how a signed payment ended (the resource's PAYMENT-RESPONSE), once; the payer's `payment_event`."""
    org_id = ctx.auth.org_id
    found = await repo.get_spend(ctx.session, org_id, payload.spend_id)
    if found is None:
        raise NotFound("no such spend", {"spend_id": str(payload.spend_id)})
    _require_paying_agent(ctx.auth, found.agent_id)
    status = "settled" if payload.success else "failed"
    row = await repo.record_outcome(ctx.session, org_id, payload.spend_id, status, payload.transaction,
                                    payload.error_reason)
    if row is None:
        raise Conflict("this spend's outcome is recorded already", {"spend_id": str(payload.spend_id)})
    extra = {"txHash": payload.transaction, "settledOn": payload.network or row.network}
    if payload.error_reason:
        extra["errorReason"] = payload.error_reason
    await ctx.emit(EventType.PAYMENT_EVENT, target_id=payload.counterpart_id,
                   target_type="external_connection" if payload.counterpart_id else None,
                   metadata=_payment_metadata(ctx, row, "processed" if payload.success else "failed", **extra))
    return _spend(row)
