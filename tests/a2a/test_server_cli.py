"""`one agents card <slug>` prints the URL of a deployed agent's A2A card (a subprocess over the gateway, ONE_URL),
and that URL serves the card; an agent never deployed has none (one error line)."""

import httpx

from shared.runtime.client import BusClient
from tests.a2a.conftest import publish
from tests.agents.scripted_model import ScriptedModel
from tests.cli.conftest import Cli, one, one_line_error  # noqa: F401 (fixture)
from tests.tenancy.conftest import Account


async def test_card_prints_the_card_url(bus: BusClient, gateway: str, owner: Account, one: Cli,  # noqa: F811
                                        model_server: ScriptedModel) -> None:
    agent = await publish(bus, gateway, owner, model_server)
    printed = (await one("agents", "card", agent.slug, ONE_URL=gateway)).ok().strip()
    assert printed == agent.card_url
    async with httpx.AsyncClient(timeout=30) as http:
        card = (await http.get(printed)).json()
    assert card["supportedInterfaces"][0]["url"] == agent.base_url
    hidden = await publish(bus, gateway, owner, model_server, deploy=False)
    one_line_error(await one("agents", "card", hidden.slug, ONE_URL=gateway), 1, "not deployed")
