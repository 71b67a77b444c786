"""The plugin registry against real NATS + Postgres: importing the sample registry (things, connections, knowledge),
validation errors naming the bad entry, platform-owner-only import, search by meaning, TypeScript-only plugins."""

import pytest

from shared.contracts.agents.plugins import (
    PLUGIN_GET,
    PLUGIN_IMPORT,
    PLUGIN_INSTALL,
    PLUGIN_LIST,
    PLUGIN_SEARCH,
    PluginNotFound,
    PluginNotInstallable,
    PluginRegistryInvalid,
)
from shared.contracts.graph import THING_GET
from shared.kernel.errors import Forbidden, InvalidRequest
from shared.runtime.client import BusClient
from tests.plugins.plugin_fixtures import (  # noqa: F401 (fixtures)
    GEOCODING,
    HTTP,
    WEATHER,
    Account,
    entry,
    import_entries,
    owner,
    sample,
    unique,
)

SAMPLE = {HTTP, GEOCODING, WEATHER, "@elizaos/plugin-calendar", "@elizaos/plugin-translate", "@elizaos/plugin-solana",
          "@elizaos/client-discord"}


async def test_the_sample_registry_becomes_things_in_the_platform_org(bus: BusClient, platform: Account,  # noqa: F811
                                                                        sample, owner: Account) -> None:  # noqa: F811
    assert SAMPLE <= {*sample.created, *sample.updated, *sample.unchanged}
    again = await bus.request(PLUGIN_IMPORT, {"sample": True}, platform.ctx, timeout=120)
    assert SAMPLE <= set(again.unchanged) and not again.created

    weather = await bus.request(PLUGIN_GET, {"name": WEATHER}, owner.ctx)  # any org reads the registry
    assert (weather.version, weather.repository) == ("1.2.0", "https://github.com/elizaos-plugins/plugin-weather")
    assert weather.dependencies == {GEOCODING: "~2.1"} and weather.secret_settings == ["apiKey"]
    assert weather.installable and [a.name for a in weather.actions] == ["forecast"]

    thing = await bus.request(THING_GET, {"id": str(weather.id), "include": ["plugin_provides", "plugin_depends_on"]},
                              platform.ctx)
    assert thing.thing.type == "elizaos_plugin" and thing.thing.properties["pluginMetadata"]["version"] == "1.2.0"
    related = {(r.connection.type, r.thing.type, r.thing.name) for r in thing.related}
    assert ("plugin_provides", "plugin_action", f"{WEATHER}#forecast") in related
    assert ("plugin_depends_on", "elizaos_plugin", GEOCODING) in related

    page = await bus.request(PLUGIN_LIST, {"installable": False}, owner.ctx)
    assert {"@elizaos/plugin-solana", "@elizaos/client-discord"} <= {p.name for p in page.plugins}


async def test_only_a_platform_owner_imports(bus: BusClient, owner: Account) -> None:  # noqa: F811
    with pytest.raises(Forbidden):
        await bus.request(PLUGIN_IMPORT, {"sample": True}, owner.ctx)


@pytest.mark.parametrize(("bad", "field"), [
    ({"version": "1.2"}, "version"),
    ({"version": "not-a-version"}, "version"),
    ({"repo": "no repository here"}, "repository"),
    ({"dependencies": {"@elizaos/plugin-http": "^^1"}}, "one.dependencies.@elizaos/plugin-http"),
    ({"settings": {"type": "object", "properties": {"k": {"type": "no-such-type"}}}}, "one.settings"),
])
async def test_a_bad_entry_refuses_the_document_and_is_named(bus: BusClient, platform: Account,  # noqa: F811
                                                              bad: dict, field: str) -> None:
    good, broken = unique("test-good"), unique("test-bad")
    e = entry(bad.get("version", "1.0.0"), bad.get("dependencies"),
              **({"settings": bad["settings"]} if "settings" in bad else {}))
    if "repo" in bad:
        e["git"]["repo"] = bad["repo"]
    with pytest.raises(PluginRegistryInvalid) as refused:
        await import_entries(bus, platform, {good: entry("1.0.0"), broken: e})
    assert refused.value.details == {"entry": broken, "field": field} and broken in refused.value.message
    with pytest.raises(PluginNotFound):  # all or nothing: the good entry was not imported either
        await bus.request(PLUGIN_GET, {"name": good}, platform.ctx)


async def test_an_unknown_document_shape_or_source_is_refused(bus: BusClient, platform: Account) -> None:  # noqa: F811
    with pytest.raises(PluginRegistryInvalid):
        await bus.request(PLUGIN_IMPORT, {"registry": {"registry": []}}, platform.ctx)
    with pytest.raises(InvalidRequest):
        await bus.request(PLUGIN_IMPORT, {"sample": True, "url": "https://example.test/r.json"}, platform.ctx)
    with pytest.raises(PluginRegistryInvalid):  # nothing listens there
        await bus.request(PLUGIN_IMPORT, {"url": "http://127.0.0.1:9/registry.json"}, platform.ctx)


async def test_search_finds_plugins_by_meaning(bus: BusClient, sample, owner: Account) -> None:  # noqa: F811
    hits = await bus.request(PLUGIN_SEARCH, {"query": "will it rain tomorrow? weather forecast for my city", "k": 3},
                             owner.ctx)
    assert hits.hits and hits.hits[0].plugin.name == WEATHER
    hits = await bus.request(PLUGIN_SEARCH, {"query": "translate this text into another language"}, owner.ctx)
    assert hits.hits[0].plugin.name == "@elizaos/plugin-translate"


async def test_typescript_plugins_are_listed_but_not_installable(bus: BusClient, sample,  # noqa: F811
                                                                  owner: Account) -> None:  # noqa: F811
    solana = await bus.request(PLUGIN_GET, {"name": "@elizaos/plugin-solana"}, owner.ctx)
    assert solana.runtime == "typescript" and not solana.installable and "TypeScript" in solana.reason
    with pytest.raises(PluginNotInstallable) as refused:
        await bus.request(PLUGIN_INSTALL, {"name": "@elizaos/plugin-solana"}, owner.ctx, timeout=90)
    assert "TypeScript runtime" in refused.value.message
