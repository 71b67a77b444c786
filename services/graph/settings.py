"""The graph's own settings: the things quota and traversal bounds (same `ONE_` names as ever)."""

from pydantic import Field

from shared.kernel.settings import Settings


class GraphSettings(Settings):
    graph_things_quota: str | None = Field(
        "things",
        description="Tenancy quota metric each live thing counts against; an org without that quota is unlimited. "
        "Unset = no quota check (one bus round trip less per create).",
    )
    graph_max_depth: int = Field(6, ge=1, description="Deepest neighbour traversal a query may ask for.")
    graph_traversal_timeout_ms: int = Field(5000, ge=1, description="statement_timeout of one traversal query.")
