"""Plugins at the edges: the gateway's /v1/plugins routes (problem+json errors, the secret never echoed) and
`one plugins ...` as a person types it, over the bus and over HTTP."""

import pytest

from shared.runtime.client import BusClient
from tests.cli.conftest import Cli, one  # noqa: F401 (fixture)
from tests.gateway.conftest import Caller, alice, assert_problem, bob, http  # noqa: F401 (fixtures)
from tests.plugins.plugin_fixtures import (  # noqa: F401 (fixtures)
    GEOCODING,
    WEATHER,
    Account,
    Endpoint,
    endpoint,
    entry,
    import_entries,
    owner,
    sample,
    unique,
)

SECRET = "gw-" + unique("secret")


async def test_the_plugin_routes(alice: Caller, sample, endpoint: Endpoint, bus: BusClient,  # noqa: F811
                                 platform: Account) -> None:  # noqa: F811
    found = await alice.call("GET", "/v1/plugins/search", query="weather forecast for a city")
    assert found.status_code == 200 and found.json()["hits"][0]["plugin"]["name"] == WEATHER
    shown = await alice.call("GET", f"/v1/plugins/registry/{WEATHER}")
    assert shown.status_code == 200 and shown.json()["secret_settings"] == ["apiKey"]
    assert_problem(await alice.call("POST", "/v1/plugins/import", {"sample": True}), 403)
    assert_problem(await alice.call("GET", "/v1/plugins/registry/@elizaos/no-such-plugin"), 404, "plugin_not_found")

    made = await alice.call("POST", "/v1/plugins/installed", {"name": WEATHER})
    assert made.status_code == 201, made.text
    assert [d["plugin"] for d in made.json()["dependencies_installed"]] == ["@elizaos/plugin-http", GEOCODING]
    url = endpoint.server.url
    for name, settings in ((GEOCODING, {"baseUrl": url}), (WEATHER, {"baseUrl": url, "apiKey": SECRET})):
        configured = await alice.call("PATCH", f"/v1/plugins/installed/{name}/settings", {"settings": settings})
        assert configured.status_code == 200 and SECRET not in configured.text
    assert configured.json()["secrets_set"] == ["apiKey"]
    bad = await alice.call("PATCH", f"/v1/plugins/installed/{WEATHER}/settings", {"settings": {"units": "kelvin"}})
    assert_problem(bad, 422, "plugin_settings_invalid")
    assert (await alice.call("POST", f"/v1/plugins/installed/{WEATHER}/activate")).json()["status"] == "active"
    ran = await alice.call("POST", f"/v1/plugins/installed/{WEATHER}/actions/forecast", {"arguments": {"city": "Lima"}})
    assert ran.status_code == 200 and ran.json()["result"]["city"] == "Lima"
    assert endpoint.signed_with(SECRET, endpoint.calls[-1])
    listed = await alice.call("GET", "/v1/plugins/installed")
    assert {i["plugin"] for i in listed.json()["installs"]} >= {WEATHER, GEOCODING} and SECRET not in listed.text

    a, b = unique("test-gw-a"), unique("test-gw-b")
    await import_entries(bus, platform, {a: entry("1.0.0", {b: "^1"}), b: entry("1.0.0", {a: "^1"})})
    cycle = assert_problem(await alice.call("POST", "/v1/plugins/installed", {"name": a}), 409,
                           "plugin_dependency_cycle")
    assert cycle["details"]["path"] == f"{a} -> {b} -> {a}"
    assert_problem(await alice.call("POST", "/v1/plugins/installed", {"name": "Not A Name"}), 422)
    needed = await alice.call("DELETE", f"/v1/plugins/installed/{GEOCODING}")
    assert_problem(needed, 409, "plugin_state_conflict")
    assert (await alice.call("DELETE", f"/v1/plugins/installed/{WEATHER}")).status_code == 200


async def test_org_a_reaches_nothing_of_org_bs_install(alice: Caller, bob: Caller, bus: BusClient,  # noqa: F811
                                                      platform: Account) -> None:  # noqa: F811
    name = unique("test-victim")
    await import_entries(bus, platform, {name: entry("1.0.0", settings={
        "type": "object", "properties": {"token": {"type": "string", "writeOnly": True}}})})
    assert (await bob.call("POST", "/v1/plugins/installed", {"name": name})).status_code == 201
    assert (await bob.call("PATCH", f"/v1/plugins/installed/{name}/settings",
                           {"settings": {"token": SECRET}})).status_code == 200
    await bob.call("POST", f"/v1/plugins/installed/{name}/activate")
    before = (await bob.call("GET", f"/v1/plugins/installed/{name}")).json()
    for method, suffix, body in (("GET", "", None), ("PATCH", "/settings", {"settings": {"token": "pwned"}}),
                                 ("POST", "/deactivate", None), ("POST", "/activate", None), ("POST", "/update", None),
                                 ("POST", "/actions/anything", {"arguments": {}}), ("DELETE", "", None)):
        response = await alice.call(method, f"/v1/plugins/installed/{name}{suffix}", body)
        assert_problem(response, 404, "plugin_not_installed")
    assert name not in (await alice.call("GET", "/v1/plugins/installed")).text
    assert_problem(await alice.call("POST", "/v1/plugins/installed", {"name": name, "org_id": str(bob.account.org_id)}),
                   422)
    after = (await bob.call("GET", f"/v1/plugins/installed/{name}")).json()
    assert after == before and after["status"] == "active" and SECRET not in str(after)


@pytest.mark.parametrize("over", ["bus", "http"])
async def test_one_plugins(one: Cli, sample, gateway: str, over: str) -> None:  # noqa: F811
    env = {"ONE_URL": gateway} if over == "http" else {}
    found = (await one("plugins", "search", "translate a text into another language", **env)).ok()
    assert "@elizaos/plugin-translate" in found
    installed = (await one("plugins", "install", "@elizaos/plugin-translate", "--json", **env)).json()
    assert installed["install"]["status"] == "installed"
    done = (await one("plugins", "configure", "@elizaos/plugin-translate", "baseUrl=http://127.0.0.1:9", **env)).ok()
    assert "@elizaos/plugin-translate" in done
    assert "installed" in (await one("plugins", "installed", **env)).ok()
    refused = await one("plugins", "install", "@elizaos/plugin-solana", **env)
    assert refused.code != 0 and "TypeScript" in refused.err
    assert (await one("plugins", "uninstall", "@elizaos/plugin-translate", **env)).ok().startswith("uninstalled")
