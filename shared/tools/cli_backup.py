"""`one backup <dir>` and `one restore <dir>`: the embedded stack's data directory, stopped, to a directory and back
(what is in a backup and why it is taken offline: shared/tools/backup.py; docs/operations.md)."""

from pathlib import Path

import typer

from shared.tools.cli_output import EXIT_CONFLICT, fail


def _data_dir() -> Path:
    from shared.kernel.settings import get_settings

    return get_settings().data_dir


def backup(directory: Path = typer.Argument(..., help="Where the backup goes: a new or empty directory.")) -> None:
    """Back up the stopped stack of ONE_DATA_DIR: a pg_dump of every schema, the JetStream store, the data files."""
    import asyncio

    from shared.tools import backup as backups
    from shared.tools.stack import DataDirBusy

    try:
        made = asyncio.run(backups.backup(_data_dir(), directory))
    except DataDirBusy as busy:
        fail(f"{busy.data_dir.resolve()} is in use by `one up` (PID {busy.pid}): a backup is taken of a stopped stack",
             f"stop it (Ctrl-C there, or `kill {busy.pid}`), then run `one backup` again", EXIT_CONFLICT)
    files = made.manifest["files"]
    typer.echo(f"backed up {len(files)} files ({sum(f['bytes'] for f in files.values())} bytes) to {made.directory}; "
               f"schemas {made.manifest['schemas']}")


def restore(directory: Path = typer.Argument(..., help="A directory `one backup` wrote.")) -> None:
    """Restore a backup into ONE_DATA_DIR, which must be empty or missing; then `one up` runs it."""
    import asyncio

    from shared.tools import backup as backups
    from shared.tools.stack import DataDirBusy

    try:
        restored = asyncio.run(backups.restore(directory, _data_dir()))
    except DataDirBusy as busy:
        fail(f"{busy.data_dir.resolve()} is in use by PID {busy.pid}", "restore into another ONE_DATA_DIR",
             EXIT_CONFLICT)
    typer.echo(f"restored the backup of {restored.manifest['created_at']} into {_data_dir().resolve()}; "
               "start it with `one up`")
