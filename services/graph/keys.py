"""Secret properties sealed at rest: a value under a secret key (`properties.SECRET_KEYS`, the rule that masks them in
replies) is stored as `sealed:v2:<base64>` — an envelope-sealed blob (`shared.runtime.keyring`, the org's data key)
bound to the org, the thing and the field's path, so a copied value opens nowhere else.

The sealed form is a string, so a type whose model says `webhookSecret: str` still validates what is stored; a
reply masks it like any secret (`MASK`), so no caller ever sees a blob. A sealed string is kept as is only where the
stored thing already holds that very string at that path (a client sending back what it read); anything else a
client sends under a secret key — even a string that looks sealed — is sealed as a new value.
"""

import base64
import json
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from services.graph.properties import SECRET_KEYS
from services.graph.rows import NewThing, ThingRow
from shared.kernel.sealing_envelope import owner
from shared.runtime.context import WorkContext
from shared.runtime.keyring import Keyring, keyring_for

SEALED_PREFIX = "sealed:v2:"


def has_secrets(value: Any) -> bool:
    """Whether any key at any depth is a secret's (cheap: most things have none, and skip the keyring)."""
    if isinstance(value, dict):
        return any((k in SECRET_KEYS and v is not None) or has_secrets(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_secrets(v) for v in value)
    return False


def _aad(org_id: UUID, thing_id: UUID, path: str) -> bytes:
    return owner("one.graph.property", org_id, thing_id, path)


def _at(value: Any, key: str | int) -> Any:
    if isinstance(value, dict) and isinstance(key, str):
        return value.get(key)
    if isinstance(value, list) and isinstance(key, int) and key < len(value):
        return value[key]
    return None


async def seal_secrets(
    ring: Keyring, org_id: UUID, thing_id: UUID, properties: dict[str, Any], stored: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`properties` with every secret value sealed (what `stored` holds sealed at the same path is kept)."""
    if not has_secrets(properties):
        return properties

    async def walk(value: Any, old: Any, path: str) -> Any:
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                where = f"{path}.{k}" if path else k
                if k in SECRET_KEYS and v is not None:
                    kept = isinstance(v, str) and v.startswith(SEALED_PREFIX) and _at(old, k) == v
                    out[k] = v if kept else await _seal(ring, org_id, thing_id, where, v)
                else:
                    out[k] = await walk(v, _at(old, k), where)
            return out
        if isinstance(value, list):
            return [await walk(v, _at(old, i), f"{path}.{i}") for i, v in enumerate(value)]
        return value

    return await walk(properties, stored, "")


async def _seal(ring: Keyring, org_id: UUID, thing_id: UUID, path: str, value: Any) -> str:
    blob = await ring.seal(org_id, json.dumps(value).encode(), _aad(org_id, thing_id, path))
    return SEALED_PREFIX + base64.b64encode(blob).decode()


async def open_secrets(ring: Keyring, org_id: UUID, thing_id: UUID, properties: dict[str, Any]) -> dict[str, Any]:
    """The stored properties with every sealed value opened (for the services that need a secret, never a reply);
    ValueError if a value was moved from another thing, org or path, or altered."""

    async def walk(value: Any, path: str) -> Any:
        if isinstance(value, dict):
            return {k: await walk(v, f"{path}.{k}" if path else k) for k, v in value.items()}
        if isinstance(value, list):
            return [await walk(v, f"{path}.{i}") for i, v in enumerate(value)]
        if isinstance(value, str) and value.startswith(SEALED_PREFIX) and path.rsplit(".", 1)[-1] in SECRET_KEYS:
            blob = base64.b64decode(value[len(SEALED_PREFIX):])
            return json.loads(await ring.open(org_id, blob, _aad(org_id, thing_id, path)))
        return value

    return await walk(properties, "")


async def seal_new_things(ctx: WorkContext, things: Sequence[NewThing]) -> None:
    """Seal the secrets of things about to be inserted, in place (each bound to its own id)."""
    for thing in things:
        if has_secrets(thing.properties):
            thing.properties = await seal_secrets(keyring_for(ctx.runtime), thing.org_id, thing.id, thing.properties)


async def seal_update(ctx: WorkContext, row: ThingRow, properties: dict[str, Any]) -> dict[str, Any]:
    """An update's merged properties as stored: new secrets sealed, the stored sealed ones kept."""
    if not has_secrets(properties):
        return properties
    return await seal_secrets(keyring_for(ctx.runtime), row.org_id, row.id, properties, row.properties)
