"""`one backup <dir>` and `one restore <dir>`: a stopped embedded stack's data, taken whole and put back whole.

What a backup holds (`manifest.json` lists every file with its size and SHA-256, and the versions it came from):
- `postgres.dump`: every schema of the database in one `pg_dump -Fc` (one snapshot: pg_dump reads in a single
  repeatable-read transaction), with pgserver's own pg_dump, so server and tool versions match.
- `jetstream/`: nats-server's store directory (the ONE_EVENTS stream and its durable consumers' positions),
  copied while no nats-server runs on it: events published but not yet ingested, and where each consumer
  stands, resume exactly where they were.
- `files/`: the rest of the data directory the services keep (tenancy's API key pepper, without which no
  stored key verifies; the key-encryption keys under `keys/`, without which no sealed secret opens; commerce's
  wallet secret and local chain; the CLI's credentials; mail; archives).
  Not the servers' runtime files, logs, or `secrets.json` (a restore generates new passwords).

Offline by choice: the data directory's lock is taken, so `one up` cannot run during a backup (it is refused,
naming the running PID). A stopped stack is the one moment when the database, the stream and the consumers'
positions agree with each other without coordinating three writers; an online copy of each would be
consistent alone but not with the others. Postgres is started alone for pg_dump (or the running one reused);
a nats-server left running on the store (by a killed `one up`) is a refusal: its store is not at rest.

A restore goes only into an empty (or missing) data directory, checks every checksum before it writes
anything, initialises a fresh Postgres with new passwords, recreates the app role, and `pg_restore`s in one
transaction; the next `one up` finds everything where it was.
"""

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr

from shared.kernel.errors import Conflict, InvalidRequest
from shared.kernel.settings import Settings
from shared.tools.embedded import EmbeddedNats, EmbeddedPostgres
from shared.tools.embedded.nats import nats_server_binary
from shared.tools.stack import NATS_USERS, DataDirLock, all_migrations
from shared.tools.stack_secrets import SECRETS_FILE, StackSecrets

FORMAT = 1
MANIFEST = "manifest.json"
DUMP = "postgres.dump"
NOT_BACKED_UP = {"postgres", "nats", "logs", "runtime.json", "one-up.lock", "mailer.heartbeat", SECRETS_FILE}
"""What of the data directory is the servers' own (their data is dumped/copied separately) or runtime state."""


class NotRestorable(InvalidRequest):
    """The backup directory is not a complete, unaltered backup this version can restore."""

    code = "backup_invalid"


@dataclass
class Backup:
    directory: Path
    manifest: dict


async def backup(data_dir: Path, target: Path) -> Backup:
    """Back up the (stopped) stack of `data_dir` into `target`, which must be empty or not exist."""
    data_dir, target = data_dir.resolve(), target.resolve()
    secrets = StackSecrets.existing(data_dir)
    if secrets is None or not (data_dir / "postgres" / "PG_VERSION").exists():
        raise Conflict(f"{data_dir} holds no stack started by `one up`: nothing to back up", {"data_dir": str(data_dir)})
    _require_empty(target, "the backup directory")
    lock = DataDirLock.acquire(data_dir)  # DataDirBusy while `one up` runs
    try:
        if pid := EmbeddedNats(data_dir / "nats").running_pid():  # a killed `one up`'s: its store is not at rest
            raise Conflict(f"a nats-server (PID {pid}) still runs on {data_dir / 'nats'}: stop it (`kill {pid}`: it "
                           "flushes its store), then back up", {"pid": pid})
        target.mkdir(mode=0o700, parents=True, exist_ok=True)  # it holds the pepper and the key hashes
        postgres = EmbeddedPostgres(data_dir / "postgres", password=secrets.postgres_superuser)
        postgres.start()
        try:
            _pg(postgres, secrets, "pg_dump", "--format=custom", f"--file={target / DUMP}", "--dbname=postgres")
            versions = {"postgres": await _server_version(postgres.url), "schemas": await _schema_versions(postgres.url)}
        finally:
            if not postgres.reused:
                postgres.stop()
        if (data_dir / "nats" / "jetstream").exists():
            shutil.copytree(data_dir / "nats" / "jetstream", target / "jetstream")
        for path in _kept_files(data_dir):
            copied = target / "files" / path.relative_to(data_dir)
            copied.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, copied)  # modes too: the pepper stays 0600
        manifest = {
            "format": FORMAT,
            "created_at": datetime.now(UTC).isoformat(),
            "one": _one_version(),
            "nats_server": _output(nats_server_binary(), "--version"),
            "pg_dump": _output(postgres.binary("pg_dump"), "--version"),
            **versions,
            "files": {str(p.relative_to(target)): _describe(p) for p in sorted(target.rglob("*")) if p.is_file()},
        }
        (target / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        return Backup(target, manifest)
    finally:
        lock.release()


async def restore(source: Path, data_dir: Path) -> Backup:
    """Restore the backup in `source` into `data_dir`, which must be empty or not exist."""
    source, data_dir = source.resolve(), data_dir.resolve()
    manifest = verify(source)
    _require_empty(data_dir, "the data directory to restore into")
    lock = DataDirLock.acquire(data_dir)
    try:
        secrets = StackSecrets.ensure(data_dir, NATS_USERS)
        postgres = EmbeddedPostgres(data_dir / "postgres", password=secrets.postgres_superuser)
        settings = Settings(data_dir=data_dir, database_url=postgres.start(),
                            db_app_password=SecretStr(secrets.postgres_app))
        try:
            await _create_app_role(settings)  # the dump grants to it; roles are the cluster's, not the dump's
            _pg(postgres, secrets, "pg_restore", "--exit-on-error", "--single-transaction", "--dbname=postgres",
                str(source / DUMP))
        finally:
            postgres.stop()
        if (source / "jetstream").exists():
            shutil.copytree(source / "jetstream", data_dir / "nats" / "jetstream")
        if (source / "files").exists():
            shutil.copytree(source / "files", data_dir, dirs_exist_ok=True)
        return Backup(source, manifest)
    finally:
        lock.release()


def verify(source: Path) -> dict:
    """The manifest, once every file it lists is there with its size and checksum; NotRestorable otherwise."""
    try:
        manifest = json.loads((source / MANIFEST).read_text())
    except (OSError, ValueError) as error:
        raise NotRestorable(f"{source} is not a backup: no readable {MANIFEST} ({error})", {"path": str(source)}) from None
    if manifest.get("format") != FORMAT:
        raise NotRestorable(f"backup format {manifest.get('format')!r}, this version restores {FORMAT}",
                            {"path": str(source)})
    for name, expected in manifest["files"].items():
        path = source / name
        if not path.is_file() or _describe(path) != expected:
            raise NotRestorable(f"{path} is missing or altered since the backup (size or SHA-256 differ)",
                                {"path": str(path)})
    if DUMP not in manifest["files"]:
        raise NotRestorable(f"{source} has no {DUMP}", {"path": str(source)})
    return manifest


def _require_empty(directory: Path, what: str) -> None:
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise Conflict(f"{what} {directory} is not empty: refused, nothing is overwritten", {"path": str(directory)})


def _kept_files(data_dir: Path) -> list[Path]:
    return sorted(p for top in data_dir.iterdir() if top.name not in NOT_BACKED_UP
                  for p in ([top] if top.is_file() else top.rglob("*")) if p.is_file())


def _pg(postgres: EmbeddedPostgres, secrets: StackSecrets, program: str, *args: str) -> None:
    """pg_dump / pg_restore as the superuser over loopback; the password in the environment, never argv."""
    env = {**os.environ, "PGPASSWORD": secrets.postgres_superuser, "PGHOST": "127.0.0.1", "PGPORT": str(postgres.port),
           "PGUSER": "postgres"}
    done = subprocess.run([str(postgres.binary(program)), *args], env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{program} failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")


async def _create_app_role(settings: Settings) -> None:
    import asyncpg

    from shared.runtime.migrate import ensure_app_role

    conn = await asyncpg.connect(settings.database_url)
    try:
        await ensure_app_role(conn, settings)
    finally:
        await conn.close()


async def _server_version(url: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()


async def _schema_versions(url: str) -> dict[str, int]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return {schema: await conn.fetchval(f"SELECT coalesce(max(version), 0) FROM {schema}.schema_migrations")
                if await conn.fetchval("SELECT to_regclass($1)", f"{schema}.schema_migrations") else 0
                for schema in all_migrations()}
    finally:
        await conn.close()


def _describe(path: Path) -> dict:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def _output(*command: object) -> str:
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, check=False).stdout.strip()


def _one_version() -> str:
    from shared import __version__

    return __version__
