"""Key rotation of a service's sealed values (envelope encryption): one message per service that seals, platform only.

`one.<service>.keys.rotate` (`keys_rotate_spec(service)`): make a new key-encryption key current and re-wrap every
data key under it (`kek`), retire orgs' current data keys (`data_keys`: new writes get new keys, old values still
open), and forget KEKs nothing is wrapped under any more (`retire`). The reply says which old KEKs are retirable.
"""

from uuid import UUID

from pydantic import BaseModel, Field

from shared.kernel import subjects
from shared.kernel.envelope import MessageSpec, Payload, register_message

SEALING_SERVICES = ("graph", "tenancy", "commerce", "agents")
"""The services that keep sealed values, in the order `one keys rotate` asks them."""


class KeysRotate(Payload):
    kek: bool = Field(True, description="Make a new key-encryption key current and re-wrap every data key under it.")
    data_keys: bool = Field(
        False, description="Retire the current data keys: the next value each org seals gets a new one.")
    orgs: list[UUID] | None = Field(None, description="Whose data keys to rotate (None: every org); `data_keys` only.")
    retire: list[str] = Field(
        default_factory=list, description="KEK ids to forget: refused while any data key uses one.")
    batch: int = Field(100, ge=1, le=10_000, description="Data keys re-wrapped per transaction.")


class KeysRotated(BaseModel):
    service: str
    current_kek: str
    rewrapped: int = Field(description="Data keys re-wrapped under the current KEK by this call.")
    data_keys_rotated: int = Field(description="Orgs whose current data key was retired by this call.")
    keys_by_kek: dict[str, int] = Field(description="Data keys per KEK after this call.")
    retirable: list[str] = Field(description="Known KEKs, not current, that wrap no data key: safe to retire.")
    retired: list[str] = Field(default_factory=list)


def keys_rotate_spec(service: str) -> MessageSpec[KeysRotate, KeysRotated]:
    return register_message(
        f"{service}.keys.rotate", subjects.command(service, "keys.rotate"), KeysRotate, KeysRotated,
        permission="platform:keys",
    )
