"""API keys: format, keyed hash at rest, verification, scopes, expiry, revocation within the cache window."""

import asyncio
import re
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from shared.contracts.tenancy import KEY_CREATE, KEY_LIST, KEY_REVOKE, VERIFY_KEY
from shared.kernel.errors import Forbidden, InvalidRequest, Unauthenticated
from shared.kernel.rbac import check
from shared.runtime.client import BusClient
from tests.tenancy.conftest import Account, account, add_member

pytestmark = pytest.mark.usefixtures("services")


async def test_a_key_is_shown_once_and_only_its_keyed_hash_is_stored(
    bus: BusClient, owner: Account, admin: asyncpg.Connection
) -> None:
    issued = await bus.request(KEY_CREATE, {"name": "ci"}, owner.ctx)
    match = re.fullmatch(r"one_live_([0-9a-f]{12})_([0-9A-Za-z]{32})", issued.key)
    assert match and issued.info.key_id == match.group(1) and issued.info.prefix == f"one_live_{match.group(1)}"
    row = await admin.fetchrow("SELECT * FROM tenancy.api_keys WHERE key_id = $1", issued.info.key_id)
    assert len(row["key_hash"]) == 32 and match.group(2).encode() not in bytes(row["key_hash"])
    assert match.group(2) not in str(dict(row))
    listed = await bus.request(KEY_LIST, {}, owner.ctx)
    assert issued.info.key_id in {k.key_id for k in listed.keys}
    assert "key" not in listed.keys[0].model_dump()


async def test_verify_turns_a_key_into_the_auth_context(bus: BusClient, owner: Account) -> None:
    verified = await bus.request(VERIFY_KEY, {"key": owner.key})
    assert (verified.org_id, verified.actor_id, verified.role) == (owner.org_id, owner.person_id, "org_owner")
    assert verified.writable and "allow:*:*:0" in verified.permissions


async def test_a_wrong_secret_is_refused_even_when_the_key_is_cached(bus: BusClient, owner: Account) -> None:
    await bus.request(VERIFY_KEY, {"key": owner.key})
    wrong = owner.key[:-1] + ("a" if owner.key[-1] != "a" else "b")
    with pytest.raises(Unauthenticated, match="invalid API key"):
        await bus.request(VERIFY_KEY, {"key": wrong})
    with pytest.raises(Unauthenticated, match="not an API key"):
        await bus.request(VERIFY_KEY, {"key": "sk_live_something"})


async def test_a_revoked_key_stops_working_at_once(bus: BusClient, owner: Account) -> None:
    issued = await bus.request(KEY_CREATE, {"name": "temp"}, owner.ctx)
    await bus.request(VERIFY_KEY, {"key": issued.key})  # now cached
    revoked = await bus.request(KEY_REVOKE, {"key_id": issued.info.key_id}, owner.ctx)
    assert revoked.revoked_at is not None
    with pytest.raises(Unauthenticated, match="revoked"):
        await bus.request(VERIFY_KEY, {"key": issued.key})


async def test_a_revocation_the_cache_missed_takes_effect_within_the_ttl(
    bus: BusClient, owner: Account, admin: asyncpg.Connection, short_key_cache: float
) -> None:
    """A lost invalidation broadcast is simulated by revoking in the database behind the service's back."""
    issued = await bus.request(KEY_CREATE, {"name": "temp"}, owner.ctx)
    await bus.request(VERIFY_KEY, {"key": issued.key})
    await admin.execute("UPDATE tenancy.api_keys SET revoked_at = now() WHERE key_id = $1", issued.info.key_id)
    await bus.request(VERIFY_KEY, {"key": issued.key})  # still served from the cache
    await asyncio.sleep(short_key_cache + 0.05)
    with pytest.raises(Unauthenticated, match="revoked"):
        await bus.request(VERIFY_KEY, {"key": issued.key})


async def test_an_expired_key_fails(bus: BusClient, owner: Account, admin: asyncpg.Connection) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    issued = await bus.request(KEY_CREATE, {"name": "short", "expires_at": later}, owner.ctx)
    await admin.execute("UPDATE tenancy.api_keys SET expires_at = now() - interval '1 s' WHERE key_id = $1", issued.info.key_id)
    with pytest.raises(Unauthenticated, match="expired"):
        await bus.request(VERIFY_KEY, {"key": issued.key})
    with pytest.raises(InvalidRequest, match="past"):
        await bus.request(KEY_CREATE, {"name": "past", "expires_at": "2000-01-01T00:00:00Z"}, owner.ctx)


async def test_an_expired_key_is_refused_even_from_the_cache(bus: BusClient, owner: Account) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=0.4)).isoformat()
    issued = await bus.request(KEY_CREATE, {"name": "short", "expires_at": soon}, owner.ctx)
    await bus.request(VERIFY_KEY, {"key": issued.key})
    await asyncio.sleep(0.5)
    with pytest.raises(Unauthenticated, match="expired"):
        await bus.request(VERIFY_KEY, {"key": issued.key})


async def test_the_last_use_is_recorded(bus: BusClient, owner: Account, short_key_cache: float) -> None:
    issued = await bus.request(KEY_CREATE, {"name": "used"}, owner.ctx)
    assert issued.info.last_used_at is None
    await bus.request(VERIFY_KEY, {"key": issued.key})
    listed = await bus.request(KEY_LIST, {}, owner.ctx)
    used = next(k for k in listed.keys if k.key_id == issued.info.key_id)
    assert used.last_used_at is not None


async def test_scopes_narrow_what_a_key_may_do(bus: BusClient, owner: Account) -> None:
    issued = await bus.request(KEY_CREATE, {"name": "reader", "scopes": ["things:read", "keys:*"]}, owner.ctx)
    auth = (await account(bus, issued.key)).ctx
    assert check(auth, "things", "read").allowed
    assert not check(auth, "things", "create").allowed
    with pytest.raises(Forbidden, match="scopes"):
        await bus.request("tenancy.member.invite", {"email": "x@example.test"}, auth)


async def test_a_member_cannot_revoke_someone_elses_key_but_the_owner_can(bus: BusClient, owner: Account) -> None:
    user = await add_member(bus, owner)
    owner_key_id = owner.key.split("_")[2]
    with pytest.raises(Forbidden):
        await bus.request(KEY_REVOKE, {"key_id": owner_key_id}, user.ctx)
    with pytest.raises(Forbidden):
        await bus.request(KEY_LIST, {"everyone": True}, user.ctx)
    await bus.request(KEY_REVOKE, {"key_id": user.key.split("_")[2]}, owner.ctx)
    with pytest.raises(Unauthenticated):
        await bus.request(VERIFY_KEY, {"key": user.key})
