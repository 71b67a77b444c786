"""The graph's own settings: the things quota and traversal bounds (same `ONE_` names as ever)."""

from pydantic import Field, SecretStr

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
        5.0, gt=0, description="Seconds between the settler's passes: leases past their window, expired ones "
        "a dead replica left unsettled."
    )
    graph_quota_lease_units: int = Field(
        100, ge=1, description="Units a replica leases per org at a time (fewer near the limit), so most creates "
        "count locally with no tenancy round trip."
    )
    graph_quota_lease_seconds: float = Field(
        10.0, gt=0, description="How long a replica takes units from one lease (at most half the reservation TTL); "
        "also how long an org without the quota is taken as unlimited before tenancy is asked again."
    )
    graph_identity_sync: bool = Field(
        True, description="Mirror tenancy's organizations, people and memberships as things (the identity consumer)."
    )
    sealing_keks: SecretStr | None = Field(
        None, description="Key-encryption keys of the secrets sealed at rest (docs/sealing.md), as JSON "
        '`{"current": id, "keys": {id: base64 of 32 bytes}}`. Unset = `<data_dir>/keys/<service>.keks.json`, generated '
        "once and rotated by `one keys rotate`; set, they rotate by changing this setting.",
    )
    graph_max_depth: int = Field(6, ge=1, description="Deepest neighbour traversal a query may ask for.")
    graph_traversal_timeout_ms: int = Field(5000, ge=1, description="statement_timeout of one traversal query.")
