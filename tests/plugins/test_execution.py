"""A plugin's actions against a real local HTTP endpoint: signed calls with the sealed secret, the failure streak
and suspension after ten failures in a row (status, event, reason), and the seed's rate limits (installs, and an org's
own rule for executions)."""

import pytest

from shared.contracts.agents.plugins import (
    PLUGIN_ACTIVATE,
    PLUGIN_CONFIGURE,
    PLUGIN_EXECUTE,
    PLUGIN_INSTALL,
    PLUGIN_INSTANCE,
    PLUGIN_UNINSTALL,
    PluginActionFailed,
    PluginStateConflict,
)
from shared.contracts.graph import THING_GET
from shared.contracts.tenancy import RATE_SET
from shared.kernel.errors import InvalidRequest, RateLimited
from shared.runtime.client import BusClient
from tests.agents.agent_fixtures import wait_events
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

API_KEY = "k-" + unique("weather")


async def _active_weather(bus: BusClient, owner: Account, url: str) -> None:  # noqa: F811
    await bus.request(PLUGIN_INSTALL, {"name": WEATHER}, owner.ctx, timeout=60)
    await bus.request(PLUGIN_CONFIGURE, {"name": GEOCODING, "settings": {"baseUrl": url}}, owner.ctx)
    await bus.request(PLUGIN_CONFIGURE, {"name": WEATHER, "settings": {"baseUrl": url, "apiKey": API_KEY}}, owner.ctx)
    await bus.request(PLUGIN_ACTIVATE, {"name": WEATHER}, owner.ctx, timeout=90)


async def test_ten_failures_in_a_row_suspend_the_plugin(bus: BusClient, sample, owner: Account,  # noqa: F811
                                                        endpoint: Endpoint) -> None:  # noqa: F811
    await _active_weather(bus, owner, endpoint.server.url)
    done = await bus.request(PLUGIN_EXECUTE, {"name": WEATHER, "action": "forecast", "arguments": {"city": "Oslo"}},
                             owner.ctx)
    assert done.result == {"city": "Oslo", "forecast": ["sun", "rain"]}
    assert endpoint.signed_with(API_KEY, endpoint.calls[-1])  # signed with the sealed secret
    with pytest.raises(InvalidRequest):  # the caller's bad arguments: no request, no failure counted
        await bus.request(PLUGIN_EXECUTE, {"name": WEATHER, "action": "forecast", "arguments": {"days": 3}}, owner.ctx)
    assert len(endpoint.calls) == 1

    endpoint.failing = True
    for attempt in range(1, 10):
        with pytest.raises(PluginActionFailed) as failed:
            await bus.request(PLUGIN_EXECUTE, {"name": WEATHER, "action": "forecast", "arguments": {"city": "Oslo"}},
                              owner.ctx)
        assert failed.value.details == {"failures": attempt, "suspended": False}
    endpoint.failing = False  # a success breaks the streak
    await bus.request(PLUGIN_EXECUTE, {"name": WEATHER, "action": "forecast", "arguments": {"city": "Rome"}}, owner.ctx)
    assert (await bus.request(PLUGIN_INSTANCE, {"name": WEATHER}, owner.ctx)).consecutive_failures == 0

    endpoint.failing = True
    for attempt in range(1, 11):
        with pytest.raises(PluginActionFailed) as failed:
            await bus.request(PLUGIN_EXECUTE, {"name": WEATHER, "action": "forecast", "arguments": {"city": "Oslo"}},
                              owner.ctx)
    assert failed.value.details == {"failures": 10, "suspended": True} and "suspended" in failed.value.message
    install = await bus.request(PLUGIN_INSTANCE, {"name": WEATHER}, owner.ctx)
    assert install.status == "suspended" and "10 consecutive failures" in install.suspended_reason
    assert "500" in install.suspended_reason
    assert (await bus.request(THING_GET, {"id": str(install.id)}, owner.ctx)).thing.status == "inactive"

    calls = len(endpoint.calls)
    with pytest.raises(PluginStateConflict) as refused:  # a suspended plugin's actions do not run
        await bus.request(PLUGIN_EXECUTE, {"name": WEATHER, "action": "forecast", "arguments": {"city": "Oslo"}},
                          owner.ctx)
    assert "suspended" in refused.value.message and len(endpoint.calls) == calls

    deactivated = await wait_events(bus, owner, ["plugin_deactivated"], 1)
    reason = deactivated[0].metadata["reason"]
    assert deactivated[0].metadata["suspended"] is True and "10 consecutive failures" in reason
    assert len(await wait_events(bus, owner, ["plugin_error_occurred"], 19)) == 19
    assert len(await wait_events(bus, owner, ["plugin_action_executed"], 2)) == 2

    endpoint.failing = False  # fixed: activating again starts a new streak
    again = await bus.request(PLUGIN_ACTIVATE, {"name": WEATHER}, owner.ctx, timeout=90)
    assert (again.status, again.consecutive_failures, again.suspended_reason) == ("active", 0, None)
    await bus.request(PLUGIN_EXECUTE, {"name": WEATHER, "action": "forecast", "arguments": {"city": "Oslo"}}, owner.ctx)


async def test_an_orgs_own_execution_rule_replaces_the_default(bus: BusClient, sample, owner: Account,  # noqa: F811
                                                              endpoint: Endpoint) -> None:  # noqa: F811
    """A fresh org (its executions window empty): the rule set before any call is the whole count. (Set after calls,
    the calls already made in the window count against it: the default and the org's rule share the operation.)"""
    await _active_weather(bus, owner, endpoint.server.url)
    await bus.request(RATE_SET, {"org_id": str(owner.org_id), "scope": "operation", "operation": "plugin_execution",
                                 "max_calls": 1, "window_seconds": 3600}, owner.ctx)  # replaces the 100 a minute
    await bus.request(PLUGIN_EXECUTE, {"name": WEATHER, "action": "forecast", "arguments": {"city": "Oslo"}}, owner.ctx)
    calls = len(endpoint.calls)
    with pytest.raises(RateLimited):
        await bus.request(PLUGIN_EXECUTE, {"name": WEATHER, "action": "forecast", "arguments": {"city": "Oslo"}},
                          owner.ctx)
    assert len(endpoint.calls) == calls  # refused before any request, and no failure counted
    assert (await bus.request(PLUGIN_INSTANCE, {"name": WEATHER}, owner.ctx)).consecutive_failures == 0


async def test_the_install_rate_limit(bus: BusClient, platform: Account, owner: Account) -> None:  # noqa: F811
    name = unique("test-rate")
    await import_entries(bus, platform, {name: entry("1.0.0")})
    for _ in range(5):  # seed 004: ten installs per hour per org
        await bus.request(PLUGIN_INSTALL, {"name": name}, owner.ctx, timeout=90)
        await bus.request(PLUGIN_UNINSTALL, {"name": name}, owner.ctx, timeout=90)
    for _ in range(5):
        await bus.request(PLUGIN_INSTALL, {"name": name}, owner.ctx, timeout=90)
        await bus.request(PLUGIN_UNINSTALL, {"name": name}, owner.ctx, timeout=90)
    with pytest.raises(RateLimited) as limited:
        await bus.request(PLUGIN_INSTALL, {"name": name}, owner.ctx, timeout=90)
    assert limited.value.details["limit"] == 10 and limited.value.details["window_seconds"] == 3600


async def test_an_org_rule_replaces_the_default_install_limit(bus: BusClient, platform: Account,  # noqa: F811
                                                              owner: Account) -> None:  # noqa: F811
    name = unique("test-rule")
    await import_entries(bus, platform, {name: entry("1.0.0")})
    await bus.request(RATE_SET, {"org_id": str(owner.org_id), "scope": "operation", "operation": "plugin_install",
                                 "max_calls": 1, "window_seconds": 3600}, owner.ctx)
    await bus.request(PLUGIN_INSTALL, {"name": name}, owner.ctx, timeout=90)
    await bus.request(PLUGIN_UNINSTALL, {"name": name}, owner.ctx, timeout=90)
    with pytest.raises(RateLimited) as limited:
        await bus.request(PLUGIN_INSTALL, {"name": name}, owner.ctx, timeout=90)
    assert limited.value.details["limit"] == 1
