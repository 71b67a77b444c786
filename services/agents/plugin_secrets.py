"""A plugin install's secret settings, sealed at rest with envelope encryption (`services.agents.keys`) and bound to
the org and the install's id.

The secrets of one install are one sealed JSON object: only the agents service opens it, to sign an action's
request. Blobs sealed before envelope encryption (`shared.kernel.sealing` under `<data_dir>/agents/plugin-secret`)
still open; the next `configure` of the install seals them the new way.
"""

import json
from pathlib import Path
from typing import Any
from uuid import UUID

from services.agents import keys
from shared.kernel import sealing
from shared.kernel.sealing_envelope import is_envelope
from shared.runtime.service import ServiceRuntime

_secrets: dict[str, bytes] = {}


def _legacy_secret(data_dir: Path) -> bytes:
    path = Path(data_dir) / "agents" / "plugin-secret"
    if str(path) not in _secrets:
        _secrets[str(path)] = sealing.secret_file(path, "a data_dir the replicas share")
    return _secrets[str(path)]


async def seal(runtime: ServiceRuntime, org_id: UUID, install_id: UUID, values: dict[str, Any]) -> bytes | None:
    if not values:
        return None
    return await keys.seal(runtime, keys.PLUGIN_SETTINGS, org_id, install_id, json.dumps(values).encode())


async def unseal(runtime: ServiceRuntime, org_id: UUID, install_id: UUID, sealed: bytes | None) -> dict[str, Any]:
    if sealed is None:
        return {}
    blob = bytes(sealed)
    if is_envelope(blob):
        return json.loads(await keys.open_sealed(runtime, keys.PLUGIN_SETTINGS, org_id, install_id, blob))
    legacy = _legacy_secret(runtime.settings.data_dir)
    return json.loads(sealing.unseal(legacy, blob, install_id.bytes, keys.PLUGIN_SETTINGS))
