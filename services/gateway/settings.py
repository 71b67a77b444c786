"""The gateway's own settings: its HTTP port, how long a verified key is trusted, and the edge's limits.

Same `ONE_` prefix as every service (`ONE_GATEWAY_PORT`, `ONE_GATEWAY_HOST`, `ONE_GATEWAY_KEY_CACHE_TTL`,
`ONE_GATEWAY_MAX_BODY_BYTES`, `ONE_GATEWAY_REQUEST_TIMEOUT`, `ONE_GATEWAY_REPLICAS`, ...).
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
    gateway_max_body_bytes: int = Field(
        1_048_576, ge=1, description="The largest request body accepted; a larger one is refused with 413 unread."
    )
    gateway_request_timeout: float = Field(
        10.0, gt=0.0, description="Seconds a route's bus request may take before the caller gets 503 `unavailable`."
    )
    gateway_health_timeout: float = Field(
        2.0, gt=0.0, description="Seconds `/readyz` and `/v1/status` wait for each service's health report."
    )
    gateway_replicas: int = Field(
        1, ge=1, description="Replicas behind the balancer: each counts rate limits locally, allowing 1/N of a rule.",
    )
    gateway_x402_price_ttl: float = Field(
        5.0, ge=0.0, description="Seconds a paid route's price (or its absence) is kept: how long a changed price "
        "takes to reach this replica. 0 = ask commerce every time.",
    )
    gateway_access_log: bool = Field(True, description="One log line per request (`one.gateway.access`), no secrets.")
