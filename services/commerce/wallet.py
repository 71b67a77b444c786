"""An org wallet's key and what it may sign: new accounts, the key sealed at rest, EIP-3009 transfers only.

The key is sealed with envelope encryption (`keys.py`: the org's data key, bound to the org's id), so a row
copied to another org does not open (`wallet_secret`: what keys were sealed under before). Commerce signs nothing
but a `TransferWithAuthorization` (EIP-3009, the typed data x402's exact EVM scheme asks for) from the wallet's own
address, with x402's own EIP-712 types (a caller cannot smuggle in other types), through x402's `EthAccountSigner`.
"""

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from x402.mechanisms.evm.signers import EthAccountSigner
from x402.mechanisms.evm.types import AUTHORIZATION_TYPES

from services.commerce.settings import CommerceSettings
from shared.contracts.commerce.wallet import SignatureRefused
from shared.kernel import sealing

PRIMARY_TYPE = "TransferWithAuthorization"
_secrets: dict[tuple[str, str], bytes] = {}


def wallet_secret(settings: CommerceSettings) -> bytes:
    """The old sealing secret (what was sealed before envelope encryption) from settings, else from
    `<data_dir>/commerce/wallet-secret` (generated 0600 once)."""
    if settings.commerce_wallet_secret is not None:
        return settings.commerce_wallet_secret.get_secret_value().encode()
    path = Path(settings.data_dir) / "commerce" / "wallet-secret"
    key = (str(path), "file")
    if key not in _secrets:
        _secrets[key] = sealing.secret_file(path, "ONE_COMMERCE_WALLET_SECRET")
    return _secrets[key]


def new_key() -> tuple[str, bytes]:
    """A fresh account: its checksummed address and 32-byte private key."""
    account = Account.create()
    return account.address, bytes(account.key)


@dataclass(frozen=True, slots=True)
class Transfer:
    """An EIP-3009 transfer the wallet is asked to authorize, checked."""

    chain_id: int
    asset: str
    name: str
    version: str
    pay_to: str
    amount: int
    valid_after: int
    valid_before: int
    nonce: str  # 0x + 64 hex

    @property
    def network(self) -> str:
        return f"eip155:{self.chain_id}"


def _refuse(reason: str, message: str) -> SignatureRefused:
    return SignatureRefused(message, {"reason": reason})


def _address(value: Any, field: str) -> str:
    text = str(value or "")
    if len(text) != 42 or not text.startswith("0x"):
        raise _refuse("invalid_address", f"{field} is not an EVM address")
    try:
        int(text[2:], 16)
    except ValueError:
        raise _refuse("invalid_address", f"{field} is not an EVM address") from None
    return text


def _uint(value: Any, field: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise _refuse("invalid_number", f"{field} is not an integer") from None
    if number < 0 or number >= 2**256:
        raise _refuse("invalid_number", f"{field} is out of range")
    return number


def transfer_of(domain: dict[str, Any], primary_type: str, message: dict[str, Any], wallet_address: str,
                max_validity: int, now: float | None = None) -> Transfer:
    """The transfer the typed data describes, or `SignatureRefused` with the reason."""
    if primary_type != PRIMARY_TYPE:
        raise _refuse("unsupported_type", f"the wallet signs only {PRIMARY_TYPE} (EIP-3009)")
    if _address(message.get("from"), "from").lower() != wallet_address.lower():
        raise _refuse("wrong_payer", "the transfer is not from this org's wallet")
    nonce = str(message.get("nonce") or "")
    try:
        if len(nonce) != 66 or not nonce.startswith("0x") or len(bytes.fromhex(nonce[2:])) != 32:
            raise ValueError(nonce)
    except ValueError:
        raise _refuse("invalid_nonce", "the nonce must be 32 bytes, 0x-hex") from None
    transfer = Transfer(
        chain_id=_uint(domain.get("chainId"), "chainId"), asset=_address(domain.get("verifyingContract"), "asset"),
        name=str(domain.get("name") or ""), version=str(domain.get("version") or ""),
        pay_to=_address(message.get("to"), "to"), amount=_uint(message.get("value"), "value"),
        valid_after=_uint(message.get("validAfter"), "validAfter"),
        valid_before=_uint(message.get("validBefore"), "validBefore"), nonce=nonce.lower(),
    )
    if transfer.amount <= 0:
        raise _refuse("invalid_amount", "the amount must be positive")
    if not transfer.name or not transfer.version:
        raise _refuse("invalid_domain", "the EIP-712 domain needs the token's name and version")
    clock = time.time() if now is None else now
    if transfer.valid_before <= clock:
        raise _refuse("expired", "the authorization's validBefore has passed")
    if transfer.valid_before > clock + max_validity:
        raise _refuse("validity_too_long", f"the wallet signs authorizations valid for at most {max_validity} s")
    return transfer


def sign_transfer(key: bytes, transfer: Transfer) -> str:
    """The 65-byte signature (0x-hex) of the transfer, as x402's own `EthAccountSigner` makes it."""
    signer = EthAccountSigner(Account.from_key(key))
    domain = {"name": transfer.name, "version": transfer.version, "chainId": transfer.chain_id,
              "verifyingContract": transfer.asset}
    message = {"from": signer.address, "to": transfer.pay_to, "value": transfer.amount,
               "validAfter": transfer.valid_after, "validBefore": transfer.valid_before,
               "nonce": bytes.fromhex(transfer.nonce[2:])}
    return "0x" + signer.sign_typed_data(domain, AUTHORIZATION_TYPES, PRIMARY_TYPE, message).hex()
