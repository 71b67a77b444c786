"""`one packs` as a person types it: install, list, uninstall, and a refusal."""

import pytest

from tests.cli.conftest import Cli, one, one_line_error  # noqa: F401 (fixture)

pytestmark = pytest.mark.timeout(900)  # each command is a process of its own; the machine is shared


async def test_packs_commands(one: Cli) -> None:  # noqa: F811
    installed = (await one("packs", "install", "commerce", "--json")).json()
    assert {(i["kind"], i["name"]) for i in installed["items"] if i["outcome"] == "created"} >= {
        ("role", "merchant"), ("thing_type", "product"), ("agent", "shop-assistant")}
    assert "commerce" in (await one("packs", "list")).ok()
    again = (await one("packs", "install", "commerce")).ok()
    assert "existing" in again and "created" not in again
    one_line_error(await one("packs", "install"), 2, "name")
    one_line_error(await one("packs", "uninstall", "tutoring"), 5, "not installed")
    removed = (await one("packs", "uninstall", "commerce", "--json")).json()
    assert {i["outcome"] for i in removed["items"]} == {"removed"}
