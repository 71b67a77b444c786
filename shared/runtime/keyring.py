"""Envelope encryption, the stored part: one data key per org in each service's schema, wrapped by a KEK.

`<schema>.data_keys` holds every data key a service ever used, wrapped under some key-encryption key
(`shared.kernel.sealing_envelope.KeyEncryptionKeys`, local file by default). An org has at most one `current` key:
new values are sealed with it; `previous` keys still open what they sealed. Plaintext data keys live only in this
process's memory (`Keyring`, one per service runtime, `keyring_for(runtime)`).

Rotation never stops the service: a KEK rotation makes a new KEK current and re-wraps the data keys in small
batches (`FOR UPDATE SKIP LOCKED`, each batch its own short transaction) while values keep being sealed and opened
— the plaintext data keys do not change, only their wrapping. A data-key rotation retires orgs' current keys:
the next value each org seals creates a fresh one, and old blobs keep opening with the old keys.

The table has no Row-Level Security, like the other per-service queues read across orgs (a KEK rotation re-wraps
every org's keys); every per-org statement filters on the org, and a key is only ever used for the org it names.
"""

import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import sqlalchemy as sa
from pydantic import BaseModel

from shared.kernel import sealing_envelope as envelope
from shared.kernel.envelope import MessageSpec
from shared.kernel.errors import Conflict
from shared.kernel.ids import uuid7
from shared.kernel.ontology import EventType
from shared.kernel.rbac import require
from shared.runtime.db import Database, app_url
from shared.runtime.handlers import ServiceRouter

if TYPE_CHECKING:
    from shared.runtime.context import WorkContext
    from shared.runtime.service import ServiceRuntime

CURRENT_TTL = 30.0
"""Seconds a replica trusts its cached idea of an org's current data key (another replica may have rotated it)."""


def data_keys_table(schema: str) -> list[str]:
    """The migration statements of `<schema>.data_keys` (each service's own migration calls this)."""
    return [
        f"""CREATE TABLE {schema}.data_keys (
            id uuid PRIMARY KEY,
            org_id uuid NOT NULL,
            kek_id text NOT NULL,
            wrapped bytea NOT NULL,
            state text NOT NULL DEFAULT 'current' CHECK (state IN ('current', 'previous')),
            created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            rotated_at timestamptz
        )""",
        f"CREATE UNIQUE INDEX data_keys_one_current ON {schema}.data_keys (org_id) WHERE state = 'current'",
        f"CREATE INDEX data_keys_by_kek ON {schema}.data_keys (kek_id)",
    ]


class Keyring:
    """Seal and open one service's values under per-org data keys (see the module docstring)."""

    def __init__(self, db: Database, schema: str, keks: envelope.KeyEncryptionKeys) -> None:
        self.db, self.schema, self.keks = db, schema, keks
        self._keys: dict[UUID, tuple[UUID, bytes]] = {}  # data key id -> (org, plaintext key)
        self._current: dict[UUID, tuple[UUID, float]] = {}  # org -> (data key id, when looked up)
        table = f"{schema}.data_keys"
        self._select_current = sa.text(
            f"SELECT id, kek_id, wrapped FROM {table} WHERE org_id = :org AND state = 'current'")
        self._select_key = sa.text(f"SELECT org_id, kek_id, wrapped FROM {table} WHERE id = :id")
        self._insert = sa.text(
            f"INSERT INTO {table} (id, org_id, kek_id, wrapped) VALUES (:id, :org, :kek, :wrapped)"
            " ON CONFLICT (org_id) WHERE state = 'current' DO NOTHING"
        )
        self._stale = sa.text(
            f"SELECT id, kek_id, wrapped FROM {table} WHERE kek_id <> :current"
            " ORDER BY id LIMIT :n FOR UPDATE SKIP LOCKED"
        )
        self._rewrap = sa.text(f"UPDATE {table} SET kek_id = :kek, wrapped = :wrapped WHERE id = :id")
        self._count = sa.text(f"SELECT kek_id, count(*) FROM {table} GROUP BY kek_id")
        self._retire = sa.text(
            f"UPDATE {table} SET state = 'previous', rotated_at = clock_timestamp()"
            " WHERE state = 'current' AND (CAST(:orgs AS uuid[]) IS NULL OR org_id = ANY(CAST(:orgs AS uuid[])))"
            " RETURNING org_id"
        )

    async def seal(self, org_id: UUID, plaintext: bytes, aad: bytes) -> bytes:
        key_id, key = await self._current_key(org_id)
        return envelope.seal(key, key_id, plaintext, aad)

    async def open(self, org_id: UUID, blob: bytes, aad: bytes) -> bytes:
        """The plaintext; ValueError if the blob is not this org's, was moved to another owner, or was altered."""
        key_id = envelope.data_key_id(blob)
        return envelope.open_sealed(await self._key(org_id, key_id), blob, aad)

    async def _current_key(self, org_id: UUID) -> tuple[UUID, bytes]:
        cached = self._current.get(org_id)
        if cached is not None and time.monotonic() - cached[1] < CURRENT_TTL and cached[0] in self._keys:
            return cached[0], self._keys[cached[0]][1]
        for _ in range(3):  # a concurrent creator may win the insert, or rotate between our two statements
            created = None
            async with self.db.transaction() as session:
                row = (await session.execute(self._select_current, {"org": org_id})).first()
                if row is None:
                    key_id, key = uuid7(), envelope.new_data_key()
                    kek_id, wrapped = self.keks.wrap(key)
                    params = {"id": key_id, "org": org_id, "kek": kek_id, "wrapped": wrapped}
                    if not (await session.execute(self._insert, params)).rowcount:
                        continue
                    created = key_id, key
            if created is None:  # the stored current key
                created = row.id, self.keks.unwrap(row.kek_id, bytes(row.wrapped))
            self._remember(org_id, *created)  # only once committed: a blob never names a key the table lacks
            return created
        raise RuntimeError(f"no current data key for org {org_id} in {self.schema}")

    def _remember(self, org_id: UUID, key_id: UUID, key: bytes) -> None:
        self._keys[key_id] = (org_id, key)
        self._current[org_id] = (key_id, time.monotonic())

    async def _key(self, org_id: UUID, key_id: UUID) -> bytes:
        cached = self._keys.get(key_id)
        if cached is None:
            async with self.db.transaction() as session:
                row = (await session.execute(self._select_key, {"id": key_id})).first()
            if row is None:
                raise ValueError(f"no data key {key_id} in {self.schema}")
            cached = self._keys[key_id] = (row.org_id, self.keks.unwrap(row.kek_id, bytes(row.wrapped)))
        if cached[0] != org_id:
            raise ValueError("the sealed value belongs to another organization")
        return cached[1]

    async def rewrap_all(self, batch: int = 100) -> int:
        """Re-wrap every data key not under the current KEK, `batch` keys per transaction; how many were."""
        done = 0
        while True:
            current = self.keks.current
            async with self.db.transaction() as session:
                rows = (await session.execute(self._stale, {"current": current, "n": batch})).all()
                for row in rows:
                    kek_id, wrapped = self.keks.wrap(self.keks.unwrap(row.kek_id, bytes(row.wrapped)))
                    await session.execute(self._rewrap, {"id": row.id, "kek": kek_id, "wrapped": wrapped})
            done += len(rows)
            if len(rows) < batch:
                return done

    async def keys_by_kek(self) -> dict[str, int]:
        async with self.db.transaction() as session:
            return {row[0]: row[1] for row in await session.execute(self._count)}

    async def rotate_data_keys(self, org_ids: list[UUID] | None = None) -> int:
        """Retire the current data key of `org_ids` (every org: None); each one's next seal makes a new key."""
        async with self.db.transaction() as session:
            rotated = list((await session.execute(self._retire, {"orgs": org_ids})).scalars())
        for org_id in rotated:
            self._current.pop(org_id, None)
        return len(rotated)


_RINGS: "weakref.WeakKeyDictionary[Any, Keyring]" = weakref.WeakKeyDictionary()


def kek_file(data_dir: Path, service: str) -> Path:
    return Path(data_dir) / "keys" / f"{service}.keks.json"


def keyring_for(runtime: "ServiceRuntime") -> Keyring:
    """The runtime's keyring, made once: its schema's data keys, its KEKs from the service's `sealing_keks` setting
    (`ONE_SEALING_KEKS`) if set, else from the file `<data_dir>/keys/<service>.keks.json`.

    The keyring has a pool of its own (two connections): a handler sealing inside its transaction holds one of the
    service's connections while the keyring looks a data key up or creates one (committed before it is used), and
    with one shared pool enough such handlers at once would each wait for a connection none of them gives back.
    """
    ring = _RINGS.get(runtime)
    if ring is None:
        if runtime.db is None:
            raise RuntimeError(f"{runtime.name} has no database: nothing to seal into")
        db = Database(app_url(runtime.settings), pool_size=2, max_overflow=2, service=f"{runtime.name}-keyring")
        configured = getattr(runtime.settings, "sealing_keks", None)
        keks: envelope.KeyEncryptionKeys = (
            envelope.StaticKeks.from_json(configured.get_secret_value(), "ONE_SEALING_KEKS") if configured
            else envelope.LocalKeks(kek_file(runtime.settings.data_dir, runtime.name)))
        ring = _RINGS[runtime] = Keyring(db, runtime.name, keks)
    return ring


async def close(runtime: "ServiceRuntime") -> None:
    """An `on_stop` hook of the services that seal: the keyring's own pool goes with the runtime."""
    ring = _RINGS.pop(runtime, None)
    if ring is not None:
        await ring.db.dispose()


async def rotate(
    ctx: "WorkContext", ring: Keyring, *, kek: bool, data_keys: bool, orgs: list[UUID] | None, retire: list[str],
    batch: int,
) -> dict[str, Any]:
    """One `keys.rotate` request (platform only), logged as one `settings_updated` event: the reply's fields."""
    require(ctx.auth, "platform", "keys")
    service, keks = ctx.runtime.name, ring.keks
    if kek:
        rotate_kek = getattr(keks, "rotate", None)
        if rotate_kek is None:
            raise Conflict(f"{service}'s key-encryption keys are managed elsewhere: add a new one there")
        rotate_kek()
    rewrapped = await ring.rewrap_all(batch)
    rotated = await ring.rotate_data_keys(orgs) if data_keys else 0
    by_kek = await ring.keys_by_kek()
    retired = []
    for kek_id in retire:
        if by_kek.get(kek_id) or kek_id == keks.current:
            raise Conflict(f"{kek_id!r} still wraps data keys or is current: not retired",
                           {"kek": kek_id, "keys": by_kek})
        forget = getattr(keks, "retire", None)
        if forget is None:
            raise Conflict(f"{service}'s key-encryption keys are configured: remove {kek_id!r} there")
        forget(kek_id)
        retired.append(kek_id)
    known = getattr(keks, "ids", [keks.current])
    report = {
        "service": service, "current_kek": keks.current, "rewrapped": rewrapped, "data_keys_rotated": rotated,
        "keys_by_kek": by_kek, "retirable": [k for k in known if k != keks.current and not by_kek.get(k)],
        "retired": retired,
    }
    async with ctx.transaction() as tx:
        await tx.emit(EventType.SETTINGS_UPDATED, metadata={"settingsType": "encryption_keys", **report,
                                                            "kekRotated": kek, "dataKeysRotated": data_keys})
    return report


def rotation_router(service: str, spec: MessageSpec[Any, Any], reply: type[BaseModel]) -> ServiceRouter:
    """The `keys.rotate` subscriber of a service that seals (`spec`: `shared.contracts.keys.keys_rotate_spec`), to
    `include` in its router: the same handler everywhere, so it is written once, here."""
    router = ServiceRouter(service)

    @router.handler(spec, transactional=False)
    async def rotate_keys(ctx: "WorkContext", payload: Any) -> BaseModel:
        return reply(**await rotate(ctx, keyring_for(ctx.runtime), **payload.model_dump()))

    return router
