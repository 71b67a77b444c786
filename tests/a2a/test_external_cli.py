"""`one agents external ...` against the real stack and a bare A2A agent on a real port: add (the key from the
environment, never printed back), list at 80 columns, show, credentials, remove, and one-line refusals."""

from collections.abc import AsyncIterator

import pytest

from tests.a2a.remote_agent import API_KEY, PLATFORM, RemoteAgent
from tests.cli.conftest import Cli, one, one_line_error  # noqa: F401 (fixture)
from tests.tenancy.conftest import owner  # noqa: F401 (fixtures)


@pytest.fixture
async def remote() -> AsyncIterator[RemoteAgent]:
    agent = RemoteAgent(streaming=True)
    await agent.start()
    yield agent
    await agent.stop()


async def test_external_add_list_show_credentials_remove(one: Cli, remote: RemoteAgent) -> None:  # noqa: F811
    added = (await one("agents", "external", "add", remote.url, "--slug", "researcher", "--json",
                       ONE_EXTERNAL_API_KEY=API_KEY)).json()
    assert added["name"] == "Market Researcher" and added["has_credentials"] and API_KEY not in str(added)

    listed = (await one("agents", "external", "list")).ok()
    assert "researcher" in listed and PLATFORM.split()[0] in listed and API_KEY[-4:] in listed
    assert all(len(line) <= 80 for line in listed.splitlines()) and API_KEY not in listed
    shown = (await one("agents", "external", "show", "researcher")).ok()
    assert "Market research" in shown and remote.url in shown and API_KEY not in shown

    one_line_error(await one("agents", "external", "add", remote.url, "--slug", "again"), 7, "external_agent_exists")
    one_line_error(await one("agents", "external", "add", "http://127.0.0.1:9/"), 6, "agent_card_unreachable")
    one_line_error(await one("agents", "external", "show", "nobody"), 5, "external_agent_not_found")
    one_line_error(await one("agents", "external", "credentials", "researcher"), 1, "--api-key")

    cleared = (await one("agents", "external", "credentials", "researcher", "--clear", "--json")).json()
    assert not cleared["has_credentials"]
    assert "removed researcher" in (await one("agents", "external", "remove", "researcher")).ok()
    assert "no external agents" in (await one("agents", "external", "list")).ok()
