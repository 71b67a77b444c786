"""The embedded stack's passwords, generated on the first `one up` and reused by every later one.

One password per NATS user of deploy/nats/nats-server.conf (each service, the gateway, the mailer, the CLI):
nats-server reads them from `$ONE_NATS_<USER>_PASSWORD`, each child gets only its own. Two for Postgres: the
superuser that migrates (SCRAM, pg_hba allows nothing else) and the app role the services connect as.

They live in `<data_dir>/secrets.json`, created with mode 0600 (O_EXCL: two starts never write two sets) and
refused when others may read it, like the credentials file. Standard library only: the CLI reads it too.
"""

import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from shared.tools.credentials import InsecureCredentials

SECRETS_FILE = "secrets.json"


def nats_password_variable(user: str) -> str:
    """The environment variable deploy/nats/nats-server.conf reads `user`'s password from."""
    return f"ONE_NATS_{user.upper()}_PASSWORD"


@dataclass(frozen=True)
class StackSecrets:
    nats: dict[str, str]  # user -> password
    postgres_superuser: str
    postgres_app: str

    def nats_environment(self) -> dict[str, str]:
        """What nats-server needs in its environment to resolve every user's password."""
        return {nats_password_variable(user): password for user, password in self.nats.items()}

    @classmethod
    def path(cls, data_dir: Path) -> Path:
        return Path(data_dir) / SECRETS_FILE

    @classmethod
    def existing(cls, data_dir: Path) -> "StackSecrets | None":
        """The data directory's secrets, None when `one up` never made any there (or runs without embedded servers)."""
        path = cls.path(data_dir)
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            return None
        if mode & 0o077:
            raise InsecureCredentials(f"{path} is readable by others (mode {mode:04o}): run `chmod 600 {path}`",
                                      {"path": str(path), "mode": f"{mode:04o}"})
        stored = json.loads(path.read_text())
        return cls(nats=stored["nats"], postgres_superuser=stored["postgres"]["superuser"],
                   postgres_app=stored["postgres"]["app"])

    @classmethod
    def ensure(cls, data_dir: Path, nats_users: tuple[str, ...]) -> "StackSecrets":
        """The saved secrets, with a password for every user in `nats_users`; generated where missing."""
        found = cls.existing(data_dir)
        if found is not None and set(nats_users) <= set(found.nats):
            return found
        made = found or cls({}, _new_password(), _new_password())
        made = cls({**{user: _new_password() for user in nats_users}, **made.nats}, made.postgres_superuser,
                   made.postgres_app)
        made._write(cls.path(data_dir), replace=found is not None)
        return cls.existing(data_dir) or made

    def _write(self, path: Path, *, replace: bool) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"nats": self.nats, "postgres": {"superuser": self.postgres_superuser,
                                                          "app": self.postgres_app}}, indent=2)
        if replace:  # a user added to the conf since: write a new file, move it over the old one
            temporary = path.with_suffix(".tmp")
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as out:
                out.write(text)
            os.replace(temporary, path)
            return
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return  # another start made them first: theirs are read back
        with os.fdopen(descriptor, "w") as out:
            out.write(text)


def _new_password() -> str:
    """192 random bits as a letter and hex digits: nats-server parses a `$VARIABLE`'s value as config (a leading
    digit makes it a number, some punctuation a syntax error), and it goes into connection URLs as it is."""
    return "p" + secrets.token_hex(24)
