"""Retention: move events older than the hot window into compressed archive files, and back.

Runs as the tables' owner (the admin URL: a deploy-time job / CronJob, not the
app role, which may not delete events). Each chunk is one transaction: lock the
oldest rows past the cutoff, write them (rendered by Postgres, so metadata keeps
its exact bytes) to `events-<first>-<last>.jsonl.gz`, fsync, record the file with
its SHA-256 in `manifest.json`, delete the rows, commit. A crash before the
commit leaves the rows hot; the next run rewrites the same file name.
"""

import gzip
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import asyncpg

from services.eventlog import repository
from services.eventlog.settings import EventlogSettings
from shared.kernel.settings import Settings
from shared.runtime.db import plain_url

MANIFEST = "manifest.json"
Progress = Callable[[int, int], None]  # (done, total)


class ArchiveCorrupt(Exception):
    """An archive file does not match its manifest entry."""


@dataclass
class ArchiveResult:
    archived: int = 0
    files: list[Path] = field(default_factory=list)


def _admin_url(settings: Settings) -> str:
    if not settings.database_url:
        raise RuntimeError("retention needs the owner connection: set ONE_DATABASE_URL (or DATABASE_URL)")
    return plain_url(settings.database_url)


def _write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_manifest(directory: Path) -> dict:
    path = directory / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {"version": 1, "files": []}


def _record(directory: Path, entry: dict) -> None:
    manifest = read_manifest(directory)
    manifest["files"] = [f for f in manifest["files"] if f["name"] != entry["name"]] + [entry]
    manifest["files"].sort(key=lambda f: f["first_position"])
    _write_durably(directory / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())


async def archive_events(
    settings: EventlogSettings,
    *,
    before: datetime | None = None,
    org_id: UUID | None = None,
    directory: Path | None = None,
    chunk: int | None = None,
    progress: Progress | None = None,
) -> ArchiveResult:
    """Archive every event that occurred before `before` (default: now - hot window), then drop it from the hot table."""
    cutoff = before or datetime.now(UTC) - timedelta(days=settings.eventlog_hot_window_days)
    directory = directory or settings.eventlog_archive_path
    directory.mkdir(parents=True, exist_ok=True)
    chunk = chunk or settings.eventlog_archive_chunk
    result = ArchiveResult()
    conn = await asyncpg.connect(_admin_url(settings))
    try:
        total = await repository.count_archivable(conn, cutoff, org_id)
        while True:
            async with conn.transaction():
                rows = await repository.claim_archivable(conn, cutoff, org_id, chunk)
                if not rows:
                    break
                positions = [r["position"] for r in rows]
                data = gzip.compress(("\n".join(r["line"] for r in rows) + "\n").encode(), mtime=0)
                name = f"events-{positions[0]:020d}-{positions[-1]:020d}.jsonl.gz"
                _write_durably(directory / name, data)
                _record(directory, {
                    "name": name,
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "bytes": len(data),
                    "count": len(rows),
                    "first_position": positions[0],
                    "last_position": positions[-1],
                    "min_occurred_at": min(r["occurred_at"] for r in rows).isoformat(),
                    "max_occurred_at": max(r["occurred_at"] for r in rows).isoformat(),
                    "archived_at": datetime.now(UTC).isoformat(),
                })
                deleted = await repository.delete_archived(conn, positions)
                if deleted != len(rows):
                    raise RuntimeError(f"archived {len(rows)} events but deleted {deleted}; rolled back")
            result.archived += len(rows)
            result.files.append(directory / name)
            if progress:
                progress(result.archived, max(total, result.archived))
    finally:
        await conn.close()
    return result


def verified_lines(directory: Path, entry: dict) -> list[str]:
    """The lines of one archive file, after checking its checksum and count against the manifest."""
    data = (directory / entry["name"]).read_bytes()
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise ArchiveCorrupt(f"{entry['name']}: checksum does not match the manifest")
    lines = gzip.decompress(data).decode().splitlines()
    if len(lines) != entry["count"]:
        raise ArchiveCorrupt(f"{entry['name']}: {len(lines)} events, the manifest says {entry['count']}")
    return lines


async def import_archive(
    settings: Settings, directory: Path, *, names: list[str] | None = None, progress: Progress | None = None
) -> int:
    """Put archived events back into the hot table (same ids and positions); already-present ones are skipped."""
    entries = [e for e in read_manifest(directory)["files"] if names is None or e["name"] in names]
    total = sum(e["count"] for e in entries)
    files = [(entry, verified_lines(directory, entry)) for entry in entries]  # all verified before any insert
    imported = done = 0
    conn = await asyncpg.connect(_admin_url(settings))
    try:
        for _, lines in files:
            for start in range(0, len(lines), 5000):
                async with conn.transaction():
                    imported += await repository.import_lines(conn, lines[start : start + 5000])
                done += len(lines[start : start + 5000])
                if progress:
                    progress(done, total)
    finally:
        await conn.close()
    return imported
