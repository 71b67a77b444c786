"""The graph's own settings: the things quota and traversal bounds (same `ONE_` names as ever)."""

from pydantic import Field

from shared.kernel.settings import Settings


class GraphSettings(Settings):
    graph_things_quota: str | None = Field(
        "things",
        description="Tenancy quota metric each live thing counts against; an org without that quota is unlimited. "
        "Unset = no quota check (one bus round trip less per create).",
    )
    graph_quota_reservation_ttl: float = Field(
        30.0, gt=0, le=3600,
        description="Seconds tenancy holds a create's quota units: a graph that dies before committing frees them "
        "after this long.",
    )
    graph_quota_settle_interval: float = Field(
        10.0, gt=0, description="Seconds between the settler's passes over settlements nobody finished."
    )
    graph_identity_sync: bool = Field(
        True, description="Mirror tenancy's organizations, people and memberships as things (the identity consumer)."
    )
    graph_max_depth: int = Field(6, ge=1, description="Deepest neighbour traversal a query may ask for.")
    graph_traversal_timeout_ms: int = Field(5000, ge=1, description="statement_timeout of one traversal query.")
