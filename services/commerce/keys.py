"""Commerce's secrets sealed with envelope encryption (`shared.runtime.keyring`): an org wallet's private key, the
org's AP2 signing keys, its ACP webhook secret. AES-GCM under the org's data key, wrapped by a key-encryption key,
so `one keys rotate` re-wraps them without touching a secret; the additional data binds the org and the purpose,
so a blob copied to another org, or used for another kind of secret, does not open.

Values sealed before (`shared.kernel.sealing` under the wallet secret, `wallet.wallet_secret`) still open; they are
sealed the new way the next time they are written (a wallet or AP2 key is written once: rotate it to move it).
"""

from uuid import UUID

from services.commerce.wallet import wallet_secret
from shared.kernel import sealing
from shared.kernel.sealing_envelope import is_envelope, owner
from shared.runtime.keyring import keyring_for
from shared.runtime.service import ServiceRuntime

WALLET_KEY = b"one.commerce.wallet-key"
AP2_KEY = b"one.commerce.ap2-key"
WEBHOOK_SECRET = b"one.commerce.webhook-secret"


async def seal(runtime: ServiceRuntime, purpose: bytes, org_id: UUID, plaintext: bytes) -> bytes:
    return await keyring_for(runtime).seal(org_id, plaintext, owner(purpose, org_id))


async def open_sealed(runtime: ServiceRuntime, purpose: bytes, org_id: UUID, sealed: bytes) -> bytes:
    """The plaintext, sealed either way; ValueError (or LookupError: its KEK is gone) if it does not open."""
    if is_envelope(sealed):
        return await keyring_for(runtime).open(org_id, sealed, owner(purpose, org_id))
    return sealing.unseal(wallet_secret(runtime.settings), sealed, org_id.bytes, purpose)
