"""The local credentials file: the API key `one up` created, used by the CLI by default.

`ONE_API_KEY` in the environment wins over the file. The file lives in the data
directory with mode 0600, like an SSH key: whoever can read it acts as its owner.
"""

import json
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

from shared.kernel.errors import Forbidden

if TYPE_CHECKING:  # a client passes its `ClientSettings`: only `data_dir` is read here
    from shared.kernel.settings import Settings
    from shared.tools.sdk.connect import ClientSettings


def credentials_path(settings: "Settings | ClientSettings") -> Path:
    return settings.data_dir / "credentials.json"


def save_credentials(settings: "Settings", *, api_key: str, org_id: UUID, person_id: UUID, email: str) -> Path:
    path = credentials_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an existing file keeps its mode through O_CREAT: set it
    with os.fdopen(descriptor, "w") as file:
        json.dump({"api_key": api_key, "org_id": str(org_id), "person_id": str(person_id), "email": email}, file, indent=2)
    return path


class InsecureCredentials(Forbidden):
    """The credentials file can be read by others than its owner: refused until its mode is 0600 again."""

    code = "insecure_credentials"


def load_api_key(settings: "Settings | ClientSettings") -> str | None:
    """`ONE_API_KEY`, else the credentials file's key (refused when others may read the file), else None."""
    if key := os.environ.get("ONE_API_KEY"):
        return key
    path = credentials_path(settings)
    if not path.exists():
        return None
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise InsecureCredentials(f"{path} is readable by others (mode {mode:04o}): run `chmod 600 {path}`",
                                  {"path": str(path), "mode": f"{mode:04o}"})
    return json.loads(path.read_text())["api_key"]
