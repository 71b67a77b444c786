"""How `One.connect()` finds the platform and the key, and what it refuses."""

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.kernel.errors import InvalidRequest, Unavailable
from shared.kernel.ids import uuid7
from shared.kernel.settings import Settings, get_settings
from shared.tools.credentials import InsecureCredentials, save_credentials
from shared.tools.sdk import NoCredentials, One
from tests.tenancy.conftest import Account

FOUND_IN_ENV = ("ONE_URL", "ONE_API_KEY", "ONE_NATS_URL", "NATS_URL", "ONE_DATA_DIR")


@pytest.fixture
def bare_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No platform and no key in the environment: only what a test passes or writes."""
    for name in FOUND_IN_ENV:
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("bare_env")
async def test_the_running_stack_is_found_in_its_data_directory(tmp_path: Path, settings: Settings,
                                                                owner: Account) -> None:
    """As after `one up`: runtime.json says where NATS listens, credentials.json (0600) holds the key."""
    (tmp_path / "runtime.json").write_text(json.dumps({"nats_url": settings.nats_url, "pid": os.getpid()}))
    save_credentials(Settings(data_dir=tmp_path), api_key=owner.key, org_id=owner.org_id, person_id=owner.person_id,
                     email="owner@example.test")
    assert (tmp_path / "credentials.json").stat().st_mode & 0o777 == 0o600
    async with await One.connect(data_dir=tmp_path) as one:
        assert one.kind == "bus" and (await one.whoami()).org_id == owner.org_id


@pytest.mark.usefixtures("bare_env")
async def test_a_credentials_file_others_may_read_is_refused(tmp_path: Path, settings: Settings, owner: Account) -> None:
    (tmp_path / "credentials.json").write_text(json.dumps({"api_key": owner.key}))
    (tmp_path / "credentials.json").chmod(0o640)
    with pytest.raises(InsecureCredentials, match="chmod 600"):
        await One.connect(nats_url=settings.nats_url, data_dir=tmp_path)


@pytest.mark.usefixtures("bare_env")
async def test_no_key_and_no_platform_are_clear_errors(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(NoCredentials, match="ONE_API_KEY"):
        await One.connect(nats_url=settings.nats_url, data_dir=tmp_path)
    with pytest.raises(Unavailable, match="ONE_URL"):
        await One.connect(key="one_anything", data_dir=tmp_path)


@pytest.mark.usefixtures("bare_env")
async def test_one_url_in_the_environment_means_http(monkeypatch: pytest.MonkeyPatch, gateway: str,
                                                     owner: Account, tmp_path: Path) -> None:
    monkeypatch.setenv("ONE_URL", gateway)
    monkeypatch.setenv("ONE_API_KEY", owner.key)
    async with await One.connect(data_dir=tmp_path) as one:
        assert one.kind == "http" and (await one.whoami()).org_id == owner.org_id


async def test_acting_in_another_org_is_refused_over_http(gateway: str, owner: Account) -> None:
    with pytest.raises(InvalidRequest, match="over the bus only"):
        await One.connect(url=gateway, key=owner.key, org=uuid7())
