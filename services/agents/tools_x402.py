"""The `x402_fetch` tool: an agent fetches an x402-priced URL and pays for it from its org's wallet.

The request goes through the official x402 client (`x402Client` + the exact EVM client scheme + its httpx
transport). Its signer holds no key: it asks commerce (`commerce.wallet.sign`) to sign, as the agents
service acting for the agent, so the agent's budget is enforced where the key is. Over budget, commerce
refuses, nothing is signed, and the model gets the typed error as the tool's result.

x402's scheme calls its signer synchronously, while the bus is asynchronous: the x402 client therefore runs
in a worker thread with an event loop of its own, and the signer hands each signature request to the
service's loop (`run_coroutine_threadsafe`) and waits for it there, so the service's loop is never blocked.

Every payment is recorded on the payer's side: commerce's `payment_event`s (requested, then processed or
failed with the tx hash from PAYMENT-RESPONSE) and a `transacted` connection from the agent to the paid
service's `external_connection` thing (found or created by the URL's origin).
"""

import asyncio
import ipaddress
import logging
import socket
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import httpx
from x402 import x402Client
from x402.http.clients.httpx import PaymentError, x402_httpx_transport
from x402.http.x402_http_client import x402HTTPClient
from x402.mechanisms.evm.exact.register import register_exact_evm_client
from x402.mechanisms.evm.types import TypedDataDomain

from services.agents.run_work import RunWork
from services.agents.tools_access import ToolRefused
from services.agents.tools_builtin import X402FetchArgs
from shared.contracts.commerce.wallet import WALLET_GET, WALLET_RECEIPT, WALLET_SIGN, PaymentImpossible, Signature
from shared.contracts.graph import CONNECTION_CREATE, THING_CREATE
from shared.kernel.envelope import AuthContext, MessageSpec, Protocol
from shared.kernel.errors import OneError, Unavailable
from shared.runtime.context import service_identity

log = logging.getLogger(__name__)


BODY_CHARS = 4000
"""A paid response's body is given to the model up to this many characters."""
SIGN_TIMEOUT = 30.0
FETCH_TIMEOUT = 60.0


def paying_identity(work: RunWork) -> AuthContext:
    """The agents service acting for the paying agent: the only identity commerce's wallet signs for."""
    return service_identity("agents", work.run.org_id, ("wallets:sign", "wallets:read"), on_behalf_of=work.agent.id)


@dataclass
class WalletSigner:
    """x402's `ClientEvmSigner` whose key stays in commerce: each signature is a bus request on the service's loop."""

    wallet_address: str
    agent_id: UUID
    resource: str
    ask: Any  # async (spec, payload) -> result, run on `loop`
    loop: asyncio.AbstractEventLoop
    loop_thread: int = field(default_factory=threading.get_ident)  # made on the loop's thread
    signed: list[tuple[Signature, dict[str, Any]]] = field(default_factory=list)

    @property
    def address(self) -> str:
        return self.wallet_address

    def sign_typed_data(self, domain: TypedDataDomain | dict[str, Any], types: Any, primary_type: str,
                        message: dict[str, Any]) -> bytes:
        if threading.get_ident() == self.loop_thread:  # waiting here for the loop would wait forever
            raise RuntimeError("the wallet signer must be called off the service's event loop")
        body = {"agent_id": str(self.agent_id), "domain": _domain(domain), "primary_type": primary_type,
                "message": {k: "0x" + v.hex() if isinstance(v, bytes) else str(v) for k, v in message.items()},
                "resource": self.resource}
        signature = asyncio.run_coroutine_threadsafe(self.ask(WALLET_SIGN, body), self.loop).result(SIGN_TIMEOUT)
        self.signed.append((signature, body["message"]))
        return bytes.fromhex(signature.signature.removeprefix("0x"))


def _domain(domain: TypedDataDomain | dict[str, Any]) -> dict[str, Any]:
    if isinstance(domain, TypedDataDomain):
        return {"name": domain.name, "version": domain.version, "chainId": domain.chain_id,
                "verifyingContract": domain.verifying_contract}
    return dict(domain)


@dataclass
class Fetched:
    status: int
    headers: dict[str, str]
    body: Any


def _fetch_in_thread(signer: WalletSigner, args: X402FetchArgs) -> Fetched:
    """The request through x402's client and httpx transport, on this worker thread's own event loop."""

    async def fetch() -> Fetched:
        client = x402Client()
        client.set_spend_controls(False)  # the agent's budget is commerce's, checked where the key is, any asset
        register_exact_evm_client(client, signer)
        async with httpx.AsyncClient(transport=x402_httpx_transport(client), timeout=FETCH_TIMEOUT) as http:
            response = await http.request(args.method, args.url, json=args.body)
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text[:BODY_CHARS]
        return Fetched(response.status_code, dict(response.headers), body)

    return asyncio.run(fetch())


def _payment_failure(error: Exception) -> OneError:
    """What the model is told when x402's client could not pay: commerce's own refusal (over budget, no wallet, a
    transfer it does not sign) as it is; the resource unreachable on the paid retry; else x402's reason (e.g. no
    payment option this wallet can make)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OneError):
            return seen
        if isinstance(seen, httpx.HTTPError):
            return Unavailable(f"the paid resource could not be reached: {type(seen).__name__}")
        seen = seen.__cause__ or seen.__context__
    return PaymentImpossible(f"the resource's payment could not be made: {error}")


async def _refuse_private(url: str, allowed: bool) -> None:
    """The model picks the URL: unless the operator allows it, it must not reach this network's own addresses
    (loopback, private, link-local: other services, cloud metadata) — the response would go to the model."""
    if allowed:
        return
    host = urlsplit(url).hostname or ""
    try:
        found = await asyncio.to_thread(socket.getaddrinfo, host, None)
    except OSError:
        raise Unavailable(f"the paid resource's host {host!r} could not be resolved") from None
    for *_, address in found:
        ip = ipaddress.ip_address(address[0])
        if not ip.is_global:
            raise ToolRefused(f"x402_fetch may not reach {host} ({ip}): not a public address",
                                {"reason": "private_address"})


def _settlement(headers: dict[str, str]) -> Any:
    try:
        return x402HTTPClient(x402Client()).get_payment_settle_response(lambda name: headers.get(name.lower()))
    except (ValueError, TypeError):
        return None


async def pay_and_fetch(work: RunWork, args: X402FetchArgs) -> dict[str, Any]:
    """Fetch the URL, paying what its 402 asks within the agent's budget; the response and what was paid."""
    auth, envelope = paying_identity(work), work.ctx.envelope

    async def ask(spec: MessageSpec[Any, Any], payload: dict[str, Any]) -> Any:
        return await work.runtime.bus.request(spec, payload, auth, protocol=Protocol.X402,
                                              correlation_id=envelope.correlation_id or envelope.id,
                                              causation_id=envelope.id)

    await _refuse_private(args.url, work.runtime.settings.agents_x402_fetch_private)
    wallet = await ask(WALLET_GET, {})
    signer = WalletSigner(wallet.address, work.agent.id, args.url, ask, asyncio.get_running_loop())
    try:
        fetched = await asyncio.to_thread(_fetch_in_thread, signer, args)
    except (PaymentError, httpx.HTTPError) as error:
        failure = _payment_failure(error)
        await _failed(ask, [signature for signature, _ in signer.signed], failure.message)  # signed, never answered
        raise failure from None
    result: dict[str, Any] = {"status": fetched.status, "body": fetched.body, "paid": None}
    if signer.signed:
        result["paid"] = await _record(work, ask, signer, fetched, args.url)
    return result


async def _record(work: RunWork, ask: Any, signer: WalletSigner, fetched: Fetched, url: str) -> dict[str, Any]:
    """Report each signature's outcome to commerce; a settled payment becomes a `transacted` connection too."""
    settle = _settlement(fetched.headers)
    success = settle is not None and settle.success and fetched.status < 400
    *superseded, (last, message) = signer.signed
    await _failed(ask, [earlier for earlier, _ in superseded], "superseded by a fresh payment")  # x402's retry
    counterpart = await _transacted(work, url, message, settle) if success else None
    reason = None if success else (getattr(settle, "error_reason", None) or f"the resource answered {fetched.status}")
    spend = await ask(WALLET_RECEIPT, {
        "spend_id": str(last.spend_id), "success": success, "transaction": getattr(settle, "transaction", None) or None,
        "network": getattr(settle, "network", None), "error_reason": reason,
        "counterpart_id": str(counterpart) if counterpart else None})
    return {"amount": spend.amount, "asset": spend.asset, "network": spend.network, "pay_to": spend.pay_to,
            "status": spend.status, "transaction": spend.tx_hash, **({"error": reason} if reason else {})}


async def _failed(ask: Any, signatures: list[Signature], reason: str) -> None:
    for signature in signatures:
        await ask(WALLET_RECEIPT, {"spend_id": str(signature.spend_id), "success": False, "error_reason": reason[:500]})


async def _transacted(work: RunWork, url: str, message: dict[str, Any], settle: Any) -> UUID | None:
    """The paid service's `external_connection` (one per origin) and the agent's `transacted` connection to it."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    try:
        thing = await work.ctx.call(THING_CREATE, {
            "type": "external_connection", "name": parts.netloc, "status": "active",
            "idempotency_key": f"x402-origin:{origin}",
            "properties": {"platform": "custom", "name": parts.netloc, "baseUrl": origin, "connectionType": "rest",
                           "authentication": {"type": "custom"}, "protocol": "x402"},
        }, auth=work.service_auth)
        await work.ctx.call(CONNECTION_CREATE, {
            "from_id": str(work.agent.id), "to_id": str(thing.id), "type": "transacted",
            "metadata": {"transactionType": "payment", "protocol": "x402", "amountAtomic": message["value"],
                         "payTo": message["to"], "network": settle.network, "txHash": settle.transaction,
                         "resource": url, "runId": str(work.run.id)},
        }, auth=work.service_auth)
    except OneError as error:  # the payment stands without its graph record; its payment_event says who was paid
        log.warning("x402: the transacted connection of run %s was not recorded: %r", work.run.id, error)
        return None
    return thing.id
