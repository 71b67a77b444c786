"""Installing plugins in an org against real NATS + Postgres: a two-level dependency chain, cycles and version
conflicts refused with their path, settings with a secret that never shows, activation, update, uninstall."""

import json

import pytest

from shared.contracts.agents import PROMPT_LIST
from shared.contracts.agents.plugins import (
    PLUGIN_ACTIVATE,
    PLUGIN_CONFIGURE,
    PLUGIN_DEACTIVATE,
    PLUGIN_INSTALL,
    PLUGIN_INSTALLED,
    PLUGIN_INSTANCE,
    PLUGIN_UNINSTALL,
    PLUGIN_UPDATE,
    PluginAlreadyInstalled,
    PluginDependencyCycle,
    PluginNotInstalled,
    PluginSettingsInvalid,
    PluginStateConflict,
    PluginVersionConflict,
)
from shared.contracts.eventlog import QUERY
from shared.contracts.graph import THING_GET
from shared.kernel.errors import Forbidden
from shared.runtime.client import BusClient
from tests.agents.agent_fixtures import wait_events
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
from tests.tenancy.conftest import add_member, create_org

SECRET = "s3cr3t-" + unique("key")


async def test_installing_a_plugin_installs_its_dependencies_transitively(bus: BusClient, sample,  # noqa: F811
                                                                          owner: Account) -> None:  # noqa: F811
    result = await bus.request(PLUGIN_INSTALL, {"name": WEATHER, "version": "^1.0.0"}, owner.ctx, timeout=60)
    assert [d.plugin for d in result.dependencies_installed] == [HTTP, GEOCODING]  # deepest first
    assert result.install.plugin == WEATHER and result.install.explicit and result.install.status == "installed"
    assert not any(d.explicit for d in result.dependencies_installed)
    installs = {i.plugin: i for i in (await bus.request(PLUGIN_INSTALLED, {}, owner.ctx)).installs}
    assert installs[GEOCODING].dependency_of == [WEATHER] and installs[HTTP].dependency_of == [GEOCODING]

    events = await wait_events(bus, owner, ["plugin_installed"], 3)
    assert sorted(e.metadata["pluginName"] for e in events) == sorted([HTTP, GEOCODING, WEATHER])
    thing = await bus.request(THING_GET, {"id": str(result.install.id),
                                          "include": ["plugin_installed_in", "plugin_depends_on"]}, owner.ctx)
    assert thing.thing.type == "plugin_instance"
    related = {(r.connection.type, r.thing.id) for r in thing.related}
    assert ("plugin_installed_in", owner.org_id) in related
    assert ("plugin_depends_on", installs[GEOCODING].id) in related

    prompts = await bus.request(PROMPT_LIST, {}, owner.ctx)  # the plugin's prompt is the org's now
    assert [p.id for p in prompts.prompts if p.name == "Weather small talk"] == result.install.prompt_ids

    with pytest.raises(PluginAlreadyInstalled):
        await bus.request(PLUGIN_INSTALL, {"name": WEATHER}, owner.ctx, timeout=90)
    with pytest.raises(PluginVersionConflict) as conflict:  # the range the caller asks is checked too
        await bus.request(PLUGIN_INSTALL, {"name": "@elizaos/plugin-calendar", "version": ">=1.0"}, owner.ctx,
                          timeout=90)
    assert conflict.value.details["path"] == "@elizaos/plugin-calendar"


async def test_a_dependency_cycle_is_refused_with_its_path(bus: BusClient, platform: Account,  # noqa: F811
                                                           owner: Account) -> None:  # noqa: F811
    a, b, c = unique("test-cycle-a"), unique("test-cycle-b"), unique("test-cycle-c")
    await import_entries(bus, platform, {a: entry("1.0.0", {b: "^1.0.0"}), b: entry("1.1.0", {c: "*"}),
                                         c: entry("1.0.0", {b: ">=1"})})
    with pytest.raises(PluginDependencyCycle) as refused:
        await bus.request(PLUGIN_INSTALL, {"name": a}, owner.ctx, timeout=90)
    assert refused.value.details["path"] == f"{a} -> {b} -> {c} -> {b}"
    assert f"{b} -> {c} -> {b}" in refused.value.message
    assert (await bus.request(PLUGIN_INSTALLED, {}, owner.ctx)).installs == []  # nothing half-installed


async def test_a_version_conflict_is_refused_with_its_path(bus: BusClient, platform: Account,  # noqa: F811
                                                           owner: Account) -> None:  # noqa: F811
    a, b, c = unique("test-semver-a"), unique("test-semver-b"), unique("test-semver-c")
    await import_entries(bus, platform, {a: entry("1.0.0", {c: ">=2.0.0", b: "^1.0.0"}),
                                         b: entry("1.4.0", {c: "^1.2.0"}), c: entry("2.0.0")})
    with pytest.raises(PluginVersionConflict) as refused:
        await bus.request(PLUGIN_INSTALL, {"name": a}, owner.ctx, timeout=90)
    assert refused.value.details["path"] == f"{a} -> {b} -> {c}"
    assert refused.value.details["range"] == "^1.2.0" and refused.value.details["version"] == "2.0.0"
    assert f"{a} -> {b} -> {c}" in refused.value.message

    d = unique("test-semver-d")  # an installed dependency keeps its version: a range must admit it
    await import_entries(bus, platform, {d: entry("1.0.0", {c: "<2"})})
    await bus.request(PLUGIN_INSTALL, {"name": c}, owner.ctx, timeout=90)
    with pytest.raises(PluginVersionConflict) as refused:
        await bus.request(PLUGIN_INSTALL, {"name": d}, owner.ctx, timeout=90)
    assert refused.value.details["path"] == f"{d} -> {c}" and refused.value.details["installed"] is True


async def test_a_secret_setting_never_appears_in_a_reply_or_an_event(bus: BusClient, sample,  # noqa: F811
                                                                     owner: Account) -> None:  # noqa: F811
    await bus.request(PLUGIN_INSTALL, {"name": WEATHER}, owner.ctx, timeout=60)
    with pytest.raises(PluginSettingsInvalid) as refused:  # the schema says: at least 8 characters
        await bus.request(PLUGIN_CONFIGURE, {"name": WEATHER, "settings": {"apiKey": "short"}}, owner.ctx)
    assert "short" not in json.dumps([refused.value.message, refused.value.details])
    with pytest.raises(PluginSettingsInvalid):  # activating needs the required settings
        await bus.request(PLUGIN_ACTIVATE, {"name": WEATHER}, owner.ctx, timeout=90)
    with pytest.raises(PluginSettingsInvalid):
        await bus.request(PLUGIN_CONFIGURE, {"name": WEATHER, "settings": {"colour": "blue"}}, owner.ctx)

    replies = [await bus.request(PLUGIN_CONFIGURE, {"name": WEATHER, "settings": {
        "baseUrl": "http://127.0.0.1:9", "apiKey": SECRET, "units": "metric"}}, owner.ctx)]
    assert replies[0].secrets_set == ["apiKey"] and replies[0].settings == {"baseUrl": "http://127.0.0.1:9",
                                                                              "units": "metric"}
    replies.append(await bus.request(PLUGIN_CONFIGURE, {"name": WEATHER, "settings": {"units": None}}, owner.ctx))
    assert replies[-1].secrets_set == ["apiKey"] and "units" not in replies[-1].settings  # the secret stays
    with pytest.raises(PluginSettingsInvalid) as refused:  # a dependency needs its settings too
        await bus.request(PLUGIN_ACTIVATE, {"name": WEATHER}, owner.ctx, timeout=90)
    assert GEOCODING in refused.value.message
    await bus.request(PLUGIN_CONFIGURE, {"name": GEOCODING, "settings": {"baseUrl": "http://127.0.0.1:9"}}, owner.ctx)
    replies.append(await bus.request(PLUGIN_ACTIVATE, {"name": WEATHER}, owner.ctx, timeout=90))
    replies.append(await bus.request(PLUGIN_INSTANCE, {"name": WEATHER}, owner.ctx))
    replies.append(await bus.request(PLUGIN_INSTALLED, {}, owner.ctx))
    replies.append(await bus.request(THING_GET, {"id": str(replies[-2].id)}, owner.ctx))
    assert replies[2].status == "active"
    assert all(SECRET not in reply.model_dump_json() for reply in replies)

    await wait_events(bus, owner, ["plugin_configured"], 3)
    await wait_events(bus, owner, ["plugin_activated"], 3)  # weather and, first, its two dependencies
    page = await bus.request(QUERY, {"limit": 1000}, owner.ctx)
    assert {"plugin_installed", "plugin_configured", "plugin_activated"} <= {e.type for e in page.events}
    assert SECRET not in page.model_dump_json()
    configured = [e for e in page.events if e.type == "plugin_configured"]
    assert {e.metadata["pluginName"]: e.metadata["secretsSet"] for e in configured}[WEATHER] == ["apiKey"]


async def test_deactivate_update_and_uninstall(bus: BusClient, platform: Account, owner: Account) -> None:  # noqa: F811
    lib, app = unique("test-lib"), unique("test-app")
    await import_entries(bus, platform, {lib: entry("1.0.0"), app: entry("1.0.0", {lib: "^1.0.0"})})
    await bus.request(PLUGIN_INSTALL, {"name": app}, owner.ctx, timeout=90)
    with pytest.raises(PluginStateConflict):  # installed, never activated
        await bus.request(PLUGIN_DEACTIVATE, {"name": app}, owner.ctx)
    await bus.request(PLUGIN_ACTIVATE, {"name": app}, owner.ctx, timeout=90)
    assert (await bus.request(PLUGIN_DEACTIVATE, {"name": app}, owner.ctx)).status == "inactive"
    assert (await bus.request(PLUGIN_INSTANCE, {"name": lib}, owner.ctx)).status == "active"

    await import_entries(bus, platform, {lib: entry("2.0.0")})  # the registry moves on
    with pytest.raises(PluginVersionConflict) as refused:  # app needs lib ^1.0.0
        await bus.request(PLUGIN_UPDATE, {"name": lib}, owner.ctx, timeout=90)
    assert refused.value.details["path"] == f"{app} -> {lib}"
    await import_entries(bus, platform, {lib: entry("1.3.0")})
    updated = await bus.request(PLUGIN_UPDATE, {"name": lib}, owner.ctx, timeout=90)
    assert updated.version == "1.3.0"
    events = await wait_events(bus, owner, ["plugin_updated"], 1)
    assert (events[0].metadata["previousVersion"], events[0].metadata["pluginVersion"]) == ("1.0.0", "1.3.0")

    with pytest.raises(PluginStateConflict) as refused:
        await bus.request(PLUGIN_UNINSTALL, {"name": lib}, owner.ctx, timeout=90)
    assert refused.value.details["needed_by"] == [app]
    gone = await bus.request(PLUGIN_UNINSTALL, {"name": app}, owner.ctx, timeout=90)
    await bus.request(PLUGIN_UNINSTALL, {"name": lib}, owner.ctx, timeout=90)
    with pytest.raises(PluginNotInstalled):
        await bus.request(PLUGIN_INSTANCE, {"name": app}, owner.ctx)
    assert (await bus.request(THING_GET, {"id": str(gone.id)}, owner.ctx)).thing.status == "archived"
    assert len(await wait_events(bus, owner, ["plugin_uninstalled"], 2)) == 2


async def test_installs_are_the_orgs_own(bus: BusClient, platform: Account, owner: Account) -> None:  # noqa: F811
    name = unique("test-own")
    await import_entries(bus, platform, {name: entry("1.0.0")})
    await bus.request(PLUGIN_INSTALL, {"name": name}, owner.ctx, timeout=90)
    other = await create_org(bus, platform)
    assert (await bus.request(PLUGIN_INSTALLED, {}, other.ctx)).installs == []
    with pytest.raises(PluginNotInstalled):
        await bus.request(PLUGIN_ACTIVATE, {"name": name}, other.ctx, timeout=90)
    member = await add_member(bus, owner, role="org_user")
    assert [i.plugin for i in (await bus.request(PLUGIN_INSTALLED, {}, member.ctx)).installs] == [name]
    with pytest.raises(Forbidden):  # installing is the org admins' decision
        await bus.request(PLUGIN_UNINSTALL, {"name": name}, member.ctx, timeout=90)
