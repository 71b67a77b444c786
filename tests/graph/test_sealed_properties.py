"""Secret properties sealed at rest (envelope encryption): never in clear in the database, bound to their owner,
and still opening after a KEK rotation, a data-key rotation, and a rotation racing writes."""

import asyncio
import base64
import json
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from services.graph import keys
from services.graph.keys_backlog import seal_backlog
from shared.contracts.graph import THING_GET, THING_UPDATE
from shared.contracts.keys import keys_rotate_spec
from shared.kernel.errors import Conflict, Forbidden
from shared.kernel.sealing_envelope import LocalKeks, data_key_id
from shared.runtime.client import BusClient
from shared.runtime.keyring import Keyring, kek_file, keyring_for
from shared.runtime.service import ServiceRuntime
from tests.graph.conftest import make_thing
from tests.tenancy.conftest import Account

ROTATE = keys_rotate_spec("graph")
SECRETS = {"apiKey": "sk-live-SEALME-1234567890", "settings": {"token": "tok-SEALME-abcdef", "plain": "visible"}}


async def _stored(admin: asyncpg.Connection, thing_id: Any) -> dict[str, Any]:
    return json.loads(await admin.fetchval("SELECT properties::text FROM graph.things WHERE id = $1", thing_id))


def _fresh_ring(runtime: ServiceRuntime) -> Keyring:
    """A keyring with nothing cached: every data key is unwrapped from the table under the KEK file as it is now."""
    return Keyring(runtime.db, "graph", LocalKeks(kek_file(runtime.settings.data_dir, "graph")))


async def _opened(runtime: ServiceRuntime, admin: asyncpg.Connection, org_id: UUID, thing_id: Any) -> dict[str, Any]:
    return await keys.open_secrets(_fresh_ring(runtime), org_id, thing_id, await _stored(admin, thing_id))


async def test_a_secret_is_sealed_in_the_database_and_masked_in_replies(
    bus: BusClient, owner: Account, admin: asyncpg.Connection, services: dict[str, ServiceRuntime]
) -> None:
    thing = await make_thing(bus, owner.ctx, properties=SECRETS)
    assert thing.properties["apiKey"] == "********" and thing.properties["settings"]["token"] == "********"
    raw = await admin.fetchval("SELECT properties::text FROM graph.things WHERE id = $1", thing.id)
    assert "SEALME" not in raw and "visible" in raw and keys.SEALED_PREFIX in raw
    outbox = await admin.fetch("SELECT envelope FROM graph.outbox")
    assert not any(b"SEALME" in bytes(row["envelope"]) for row in outbox)
    opened = await _opened(services["graph"], admin, owner.org_id, thing.id)
    assert opened["apiKey"] == SECRETS["apiKey"] and opened["settings"] == SECRETS["settings"]


async def test_an_update_keeps_the_sealed_value_sent_back_masked_and_seals_a_new_one(
    bus: BusClient, owner: Account, admin: asyncpg.Connection, services: dict[str, ServiceRuntime]
) -> None:
    thing = await make_thing(bus, owner.ctx, properties=SECRETS)
    before = await _stored(admin, thing.id)
    properties = {**thing.properties, "settings": {**thing.properties["settings"], "token": "tok-SEALME-new"}}
    await bus.request(THING_UPDATE, {"id": str(thing.id), "properties": properties}, owner.ctx)
    after = await _stored(admin, thing.id)
    assert after["apiKey"] == before["apiKey"] and after["settings"]["token"] != before["settings"]["token"]
    assert "SEALME" not in json.dumps(after)
    opened = await _opened(services["graph"], admin, owner.org_id, thing.id)
    assert opened["apiKey"] == SECRETS["apiKey"] and opened["settings"]["token"] == "tok-SEALME-new"


async def test_a_client_cannot_plant_a_sealed_looking_string(
    bus: BusClient, owner: Account, admin: asyncpg.Connection, services: dict[str, ServiceRuntime]
) -> None:
    planted = keys.SEALED_PREFIX + "AAAA"
    thing = await make_thing(bus, owner.ctx, properties={"apiKey": planted})
    assert (await _stored(admin, thing.id))["apiKey"] != planted
    assert (await _opened(services["graph"], admin, owner.org_id, thing.id))["apiKey"] == planted


async def test_a_sealed_value_moved_to_another_thing_or_org_does_not_open(
    bus: BusClient, owner: Account, stranger: Account, admin: asyncpg.Connection, services: dict[str, ServiceRuntime]
) -> None:
    source = await make_thing(bus, owner.ctx, properties={"apiKey": "sk-SEALME-moved"})
    sibling = await make_thing(bus, owner.ctx, properties={"apiKey": "other"})
    foreign = await make_thing(bus, stranger.ctx, properties={"apiKey": "other"})
    blob = (await _stored(admin, source.id))["apiKey"]
    ring = keyring_for(services["graph"])
    for org_id, target in ((owner.org_id, sibling.id), (stranger.org_id, foreign.id)):
        with pytest.raises(ValueError):
            await keys.open_secrets(ring, org_id, target, {"apiKey": blob})
    with pytest.raises(ValueError):  # the same thing, another field
        await keys.open_secrets(ring, owner.org_id, source.id, {"secret": blob})
    with pytest.raises(ValueError):  # the stranger's org cannot open it even naming the right thing
        await keys.open_secrets(ring, stranger.org_id, source.id, {"apiKey": blob})


async def test_secrets_open_after_a_kek_rotation_and_the_old_kek_retires(
    bus: BusClient, owner: Account, platform: Account, admin: asyncpg.Connection, services: dict[str, ServiceRuntime]
) -> None:
    thing = await make_thing(bus, owner.ctx, properties=SECRETS)
    old_kek = LocalKeks(kek_file(services["graph"].settings.data_dir, "graph")).current
    rotated = await bus.request(ROTATE, {}, platform.ctx)
    assert rotated.current_kek != old_kek and set(rotated.keys_by_kek) == {rotated.current_kek}
    assert old_kek in rotated.retirable
    wrapped = await admin.fetch("SELECT DISTINCT kek_id FROM graph.data_keys")
    assert [row["kek_id"] for row in wrapped] == [rotated.current_kek]
    retired = await bus.request(ROTATE, {"kek": False, "retire": [old_kek]}, platform.ctx)
    assert retired.retired == [old_kek]
    assert old_kek not in LocalKeks(kek_file(services["graph"].settings.data_dir, "graph")).ids
    assert (await _opened(services["graph"], admin, owner.org_id, thing.id))["apiKey"] == SECRETS["apiKey"]
    with pytest.raises(Conflict):
        await bus.request(ROTATE, {"kek": False, "retire": [rotated.current_kek]}, platform.ctx)
    events = [json.loads(bytes(r["envelope"])) for r in await admin.fetch("SELECT envelope FROM graph.outbox")]
    assert any(e["type"] == "settings_updated" and e["payload"]["metadata"].get("settingsType") == "encryption_keys"
               and e["payload"]["metadata"].get("current_kek") == rotated.current_kek for e in events)


async def test_secrets_open_after_a_data_key_rotation_and_new_writes_use_the_new_key(
    bus: BusClient, owner: Account, platform: Account, admin: asyncpg.Connection, services: dict[str, ServiceRuntime]
) -> None:
    first = await make_thing(bus, owner.ctx, properties={"apiKey": "sk-SEALME-first"})
    rotated = await bus.request(ROTATE, {"kek": False, "data_keys": True, "orgs": [str(owner.org_id)]}, platform.ctx)
    assert rotated.data_keys_rotated == 1
    second = await make_thing(bus, owner.ctx, properties={"apiKey": "sk-SEALME-second"})
    stored = [(await _stored(admin, t.id))["apiKey"] for t in (first, second)]
    blobs = [base64.b64decode(value[len(keys.SEALED_PREFIX):]) for value in stored]
    assert data_key_id(blobs[0]) != data_key_id(blobs[1])
    assert (await _opened(services["graph"], admin, owner.org_id, first.id))["apiKey"] == "sk-SEALME-first"
    assert (await _opened(services["graph"], admin, owner.org_id, second.id))["apiKey"] == "sk-SEALME-second"


async def test_a_rotation_under_concurrent_writes_loses_nothing(
    bus: BusClient, owner: Account, stranger: Account, platform: Account, admin: asyncpg.Connection,
    services: dict[str, ServiceRuntime],
) -> None:
    async def write(i: int) -> Any:
        account = owner if i % 2 else stranger
        return account, await make_thing(bus, account.ctx, name=f"t{i}", properties={"apiKey": f"sk-SEALME-{i}"})

    rotations = [bus.request(ROTATE, {"data_keys": bool(i % 2), "batch": 1}, platform.ctx) for i in range(3)]
    results = await asyncio.gather(*(write(i) for i in range(24)), *rotations)
    written = results[:24]
    current = LocalKeks(kek_file(services["graph"].settings.data_dir, "graph")).current
    await bus.request(ROTATE, {"kek": False}, platform.ctx)  # re-wraps whatever a racing write wrapped late
    kek_ids = {row["kek_id"] for row in await admin.fetch("SELECT DISTINCT kek_id FROM graph.data_keys")}
    assert kek_ids == {current}
    for i, (account, thing) in enumerate(written):
        assert (await _opened(services["graph"], admin, account.org_id, thing.id))["apiKey"] == f"sk-SEALME-{i}"


async def test_only_the_platform_rotates_keys(bus: BusClient, owner: Account) -> None:
    with pytest.raises(Forbidden):
        await bus.request(ROTATE, {}, owner.ctx)


async def test_secrets_stored_in_clear_before_sealing_are_sealed_at_start(
    bus: BusClient, owner: Account, admin: asyncpg.Connection, services: dict[str, ServiceRuntime]
) -> None:
    thing = await make_thing(bus, owner.ctx, properties={"plain": "x"})
    await admin.execute(
        "UPDATE graph.things SET properties = properties || '{\"password\": \"pw-SEALME-old\"}' WHERE id = $1",
        thing.id)
    await admin.execute("INSERT INTO graph.sealing_backlog (org_id, thing_id) VALUES ($1, $2)", owner.org_id, thing.id)
    assert await seal_backlog(services["graph"]) >= 1
    assert "SEALME" not in json.dumps(await _stored(admin, thing.id))
    assert await admin.fetchval("SELECT count(*) FROM graph.sealing_backlog WHERE thing_id = $1", thing.id) == 0
    assert (await _opened(services["graph"], admin, owner.org_id, thing.id))["password"] == "pw-SEALME-old"
    fetched = (await bus.request(THING_GET, {"id": str(thing.id)}, owner.ctx)).thing
    assert fetched.properties["password"] == "********"
