"""`one keys rotate` as an operator types it: the platform owner rotates every sealing service's KEK, is told
which old KEKs are retirable, retires one; an org owner is refused."""

from shared.contracts.keys import SEALING_SERVICES
from tests.cli.conftest import Cli, one, one_line_error  # noqa: F401 (fixture)
from tests.graph.conftest import owner  # noqa: F401 (fixture)
from tests.tenancy.conftest import Account  # noqa: F401 (fixtures)


async def test_the_platform_rotates_and_retires_keks_from_the_cli(one: Cli, platform: Account) -> None:  # noqa: F811
    operator = one.as_(platform)
    replies = (await operator("keys", "rotate", "--json")).json()
    assert [r["service"] for r in replies] == list(SEALING_SERVICES)
    graph = replies[0]
    assert set(graph["keys_by_kek"]) <= {graph["current_kek"]} and graph["retirable"]
    table = (await operator("keys", "rotate", "--no-kek", "--service", "graph")).ok()
    assert graph["current_kek"] in table and "retire with" in table
    retired = (await operator("keys", "rotate", "--no-kek", "--service", "graph", "--retire",
                              graph["retirable"][0], "--json")).json()
    assert retired[0]["retired"] == [graph["retirable"][0]]
    refused = await operator("keys", "rotate", "--no-kek", "--service", "graph", "--retire", graph["current_kek"])
    one_line_error(refused, refused.code, "current")
    assert refused.code != 0


async def test_an_org_owner_cannot_rotate(one: Cli) -> None:  # noqa: F811
    refused = await one("keys", "rotate", "--service", "graph")
    assert refused.code != 0 and "platform" in refused.err
