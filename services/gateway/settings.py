"""The gateway's own settings: where its HTTP port listens and how long a verified key is trusted.

Same `ONE_` prefix as every service (`ONE_GATEWAY_PORT`, `ONE_GATEWAY_HOST`, `ONE_GATEWAY_KEY_CACHE_TTL`).
"""

from pydantic import Field

from shared.kernel.settings import Settings


class GatewaySettings(Settings):
    gateway_port: int = Field(
        8080, ge=0, le=65535, description="The HTTP port; 0 = any free port (tests), the one taken is in the log."
    )
    gateway_host: str = Field(
        "127.0.0.1", description="The address the HTTP port listens on; 0.0.0.0 in a container or behind a balancer."
    )
    gateway_key_cache_ttl: float = Field(
        2.0, ge=0.0, description="Seconds a verified (or refused) API key is trusted without asking tenancy again: "
        "the bound on how long a revoked key still works at this replica. 0 = ask every time.",
    )
    gateway_key_cache_size: int = Field(10_000, ge=1, description="Keys remembered at once; the oldest go first.")
