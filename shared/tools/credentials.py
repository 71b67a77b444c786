"""The local credentials file: the API key `one up` created, used by the CLI by default.

`ONE_API_KEY` in the environment wins over the file. The file lives in the data
directory with mode 0600, like an SSH key: whoever can read it acts as its owner.
"""

import json
import os
from pathlib import Path
from uuid import UUID

from shared.kernel.settings import Settings


def credentials_path(settings: Settings) -> Path:
    return settings.data_dir / "credentials.json"


def save_credentials(settings: Settings, *, api_key: str, org_id: UUID, person_id: UUID, email: str) -> Path:
    path = credentials_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump({"api_key": api_key, "org_id": str(org_id), "person_id": str(person_id), "email": email}, file, indent=2)
    return path


def load_api_key(settings: Settings) -> str | None:
    if key := os.environ.get("ONE_API_KEY"):
        return key
    path = credentials_path(settings)
    return json.loads(path.read_text())["api_key"] if path.exists() else None
