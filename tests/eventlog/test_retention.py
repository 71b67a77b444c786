"""Retention: archive old events to checksummed files, drop them from the hot table, re-import them intact."""

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from services.eventlog.retention import ArchiveCorrupt, archive_events, import_archive, read_manifest
from services.eventlog.settings import EventlogSettings
from shared.kernel.envelope import AuthContext
from shared.kernel.settings import Settings
from shared.tools.sdk.events import Events
from tests.eventlog.conftest import stored_count, wait_for_events

pytestmark = pytest.mark.usefixtures("services")

AWKWARD = {
    "protocol": "x402", "amount": 12345678901234567890.123456789, "price": 1.10, "tiny": 1e-7, "big": 10**30,
    "text": "héllo \"quoted\" \\ \n tab\t ✓ 😀", "nested": {"z": [1, {"b": None, "a": True}], "a": []}, "empty": {},
}


@pytest.fixture
async def old_and_new(events: Events, admin: asyncpg.Connection, org: AuthContext) -> None:
    old = (datetime.now(UTC) - timedelta(days=200)).isoformat()
    items = [{"type": "payment_processed", "metadata": {**AWKWARD, "n": n}, "occurred_at": old} for n in range(25)]
    items += [{"type": "user_login"}] * 3
    await events.publish_many(items)
    await wait_for_events(admin, org.org_id, 28)


async def metadata_bytes(admin: asyncpg.Connection, org: AuthContext) -> dict:
    rows = await admin.fetch(
        "SELECT id, position, metadata::text AS metadata, occurred_at FROM eventlog.events WHERE org_id = $1", org.org_id
    )
    return {r["id"]: (r["position"], r["metadata"], r["occurred_at"]) for r in rows}


@pytest.mark.usefixtures("old_and_new")
async def test_archive_then_reimport_round_trips_byte_identical_metadata(
    eventlog_settings: EventlogSettings, admin: asyncpg.Connection, org: AuthContext, tmp_path: Path
) -> None:
    before = await metadata_bytes(admin, org)
    progress = []
    result = await archive_events(
        eventlog_settings, before=datetime.now(UTC) - timedelta(days=90), org_id=org.org_id, directory=tmp_path, chunk=10,
        progress=lambda done, total: progress.append((done, total)),
    )
    assert result.archived == 25 and len(result.files) == 3
    assert progress[-1] == (25, 25)
    assert await stored_count(admin, org.org_id) == 3  # only the hot ones stay
    manifest = read_manifest(tmp_path)
    assert [f["count"] for f in manifest["files"]] == [10, 10, 5]
    first_line = json.loads(gzip.decompress((tmp_path / manifest["files"][0]["name"]).read_bytes()).splitlines()[0])
    assert first_line["org_id"] == str(org.org_id)

    assert await import_archive(eventlog_settings, tmp_path) == 25
    assert await metadata_bytes(admin, org) == before  # same ids, positions, timestamps and metadata bytes
    assert await import_archive(eventlog_settings, tmp_path) == 0  # importing again adds nothing


@pytest.mark.usefixtures("old_and_new")
async def test_corrupted_archive_is_refused_before_anything_is_imported(
    eventlog_settings: EventlogSettings, admin: asyncpg.Connection, org: AuthContext, tmp_path: Path
) -> None:
    await archive_events(eventlog_settings, before=datetime.now(UTC) - timedelta(days=90), org_id=org.org_id, directory=tmp_path,
                         chunk=10)
    last = tmp_path / read_manifest(tmp_path)["files"][-1]["name"]
    last.write_bytes(last.read_bytes()[:-3] + b"xyz")
    with pytest.raises(ArchiveCorrupt, match="checksum"):
        await import_archive(eventlog_settings, tmp_path)
    assert await stored_count(admin, org.org_id) == 3


@pytest.mark.usefixtures("old_and_new")
async def test_archive_leaves_events_inside_the_hot_window(
    migrated: Settings, admin: asyncpg.Connection, org: AuthContext, tmp_path: Path
) -> None:
    settings = EventlogSettings(**migrated.model_dump(), eventlog_hot_window_days=365, eventlog_archive_dir=tmp_path)
    result = await archive_events(settings, org_id=org.org_id)
    assert result.archived == 0 and await stored_count(admin, org.org_id) == 28
