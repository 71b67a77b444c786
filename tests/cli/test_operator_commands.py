"""The operator's commands against the real stack: `one bootstrap` (the first key where `one up` does not run)
and `one health <service>` (container probes)."""

import pytest

from tests.cli.conftest import Cli, one_line_error
from tests.tenancy.conftest import Account

pytestmark = pytest.mark.timeout(900)  # each command is a process of its own; the machine is shared


async def test_bootstrap_creates_once_then_issues_a_new_key_only_when_asked(one: Cli, platform: Account) -> None:
    again = (await one("bootstrap", "--json")).json()  # the session's platform exists already
    assert again["created"] is False and again["api_key"] is None
    assert again["organization"]["id"] == str(platform.org_id)
    issued = (await one("bootstrap", "--new-key", "--json")).json()
    assert issued["api_key"].startswith("one_") and issued["owner"]["id"] == str(platform.person_id)
    whoami = (await one.as_(None)("whoami", ONE_API_KEY=issued["api_key"])).ok()
    assert str(platform.org_id) in whoami and "platform_owner" in whoami
    no_database = await one("bootstrap", ONE_DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")
    one_line_error(no_database, 9, "unavailable")


async def test_health_of_one_service(one: Cli) -> None:
    assert (await one("health", "graph")).code == 0
    refused = await one("health", "nosuch")
    assert refused.code == 2 and "nosuch" in refused.err, refused
