"""The edge's one call for a presented API key: the auth context to stamp on envelopes."""

from shared.contracts.tenancy import VERIFY_KEY, VerifyKey
from shared.kernel.envelope import AuthContext
from shared.runtime.client import BusClient


async def authenticate(bus: BusClient, key: str) -> AuthContext:
    """Ask tenancy to verify `key`; raises `Unauthenticated` when it is not a valid key."""
    return (await bus.request(VERIFY_KEY, VerifyKey(key=key))).auth_context()
