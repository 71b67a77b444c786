"""Tenancy's two-factor secrets and commerce's wallet keys under envelope encryption: sealed the new way, still
working after a KEK rotation and a data-key rotation, and what the old sealing wrote still opens (or is re-sealed)."""

import asyncpg
import pytest
from eth_account import Account as EthAccount

from services.commerce import keys as commerce_keys
from services.commerce.wallet import wallet_secret
from services.tenancy import keys as tenancy_keys, totp
from shared.contracts.commerce.wallet import WALLET_CREATE
from shared.contracts.keys import SEALING_SERVICES, keys_rotate_spec
from shared.contracts.tenancy import TWO_FACTOR_CONFIRM, TWO_FACTOR_DISABLE, TWO_FACTOR_ENROLL
from shared.kernel import sealing
from shared.kernel.ids import uuid7
from shared.kernel.sealing_envelope import data_key_id, is_envelope
from shared.runtime.client import BusClient
from shared.runtime.service import ServiceRuntime
from tests.graph.conftest import owner, stranger  # noqa: F401 (fixtures)
from tests.tenancy.conftest import Account, admin  # noqa: F401 (fixtures)
from tests.tenancy.test_two_factor import Device
from tests.x402.test_wallet import agent_with_budget, sign, signer_of, transfer

pytestmark = pytest.mark.usefixtures("services")


async def _rotate_everything(bus: BusClient, platform: Account) -> None:  # noqa: F811
    for service in SEALING_SERVICES:
        rotated = await bus.request(keys_rotate_spec(service), {"data_keys": True}, platform.ctx)
        assert set(rotated.keys_by_kek) <= {rotated.current_kek}


async def test_two_factor_works_across_kek_and_data_key_rotations(
    bus: BusClient, owner: Account, platform: Account, admin: asyncpg.Connection  # noqa: F811
) -> None:
    enrolment = await bus.request(TWO_FACTOR_ENROLL, {}, owner.ctx)
    device = Device(enrolment.secret)
    sealed = bytes(await admin.fetchval("SELECT secret_sealed FROM tenancy.two_factor WHERE person_id = $1",
                                        owner.person_id))
    assert is_envelope(sealed) and device.secret not in sealed
    await _rotate_everything(bus, platform)
    await bus.request(TWO_FACTOR_CONFIRM, {"code": device.code()}, owner.ctx)
    await _rotate_everything(bus, platform)
    disabled = await bus.request(TWO_FACTOR_DISABLE, {"code": device.code(steps_ahead=1)}, owner.ctx)
    assert not disabled.used_backup_code


async def test_a_two_factor_secret_sealed_the_old_way_is_resealed_and_still_works(
    bus: BusClient, owner: Account, admin: asyncpg.Connection, services: dict[str, ServiceRuntime]  # noqa: F811
) -> None:
    enrolment = await bus.request(TWO_FACTOR_ENROLL, {}, owner.ctx)
    device = Device(enrolment.secret)
    pepper = services["tenancy"].state.keys.pepper
    legacy = totp.seal(pepper, device.secret, owner.person_id.bytes)
    await admin.execute("UPDATE tenancy.two_factor SET secret_sealed = $1 WHERE person_id = $2",
                        legacy, owner.person_id)
    await bus.request(TWO_FACTOR_CONFIRM, {"code": device.code()}, owner.ctx)  # the old blob opens
    assert await tenancy_keys.reseal_legacy(services["tenancy"], pepper) >= 1
    resealed = bytes(await admin.fetchval("SELECT secret_sealed FROM tenancy.two_factor WHERE person_id = $1",
                                          owner.person_id))
    assert is_envelope(resealed) and device.secret not in resealed
    with pytest.raises(ValueError):  # bound to the person: it does not open as another's
        await tenancy_keys.open_totp(services["tenancy"], pepper, uuid7(), resealed)
    await bus.request(TWO_FACTOR_DISABLE, {"code": device.code(steps_ahead=1)}, owner.ctx)


async def test_the_wallet_signs_after_rotations_and_an_old_sealed_key_still_opens(
    bus: BusClient, owner: Account, stranger: Account, platform: Account,  # noqa: F811
    admin: asyncpg.Connection, services: dict[str, ServiceRuntime],  # noqa: F811
) -> None:
    commerce = services["commerce"]
    created = await bus.request(WALLET_CREATE, {}, owner.ctx)
    sealed = bytes(await admin.fetchval("SELECT key_sealed FROM commerce.wallets WHERE org_id = $1", owner.org_id))
    assert is_envelope(sealed)
    agent = await agent_with_budget(bus, owner, 100, 1000)
    await _rotate_everything(bus, platform)
    message = transfer(created.address, 10)
    signed = await sign(bus, owner, agent.id, message)
    assert signer_of(message, signed.signature) == created.address
    key = await commerce_keys.open_sealed(commerce, commerce_keys.WALLET_KEY, owner.org_id, sealed)
    assert EthAccount.from_key(key).address == created.address
    second = await bus.request(WALLET_CREATE, {}, stranger.ctx)
    stranger_sealed = bytes(await admin.fetchval("SELECT key_sealed FROM commerce.wallets WHERE org_id = $1",
                                                 stranger.org_id))
    assert data_key_id(stranger_sealed) != data_key_id(sealed)
    with pytest.raises(ValueError):  # another org's blob, another purpose: neither opens
        await commerce_keys.open_sealed(commerce, commerce_keys.WALLET_KEY, owner.org_id, stranger_sealed)
    with pytest.raises(ValueError):
        await commerce_keys.open_sealed(commerce, commerce_keys.AP2_KEY, stranger.org_id, stranger_sealed)
    assert EthAccount.from_key(await commerce_keys.open_sealed(
        commerce, commerce_keys.WALLET_KEY, stranger.org_id, stranger_sealed)).address == second.address
    legacy = sealing.seal(b"x" * 32, key, owner.org_id.bytes, commerce_keys.WALLET_KEY)
    with pytest.raises(ValueError):  # the old format opens only under the old secret
        await commerce_keys.open_sealed(commerce, commerce_keys.WALLET_KEY, owner.org_id, legacy)
    legacy = sealing.seal(wallet_secret(commerce.settings), key, owner.org_id.bytes, commerce_keys.WALLET_KEY)
    assert await commerce_keys.open_sealed(commerce, commerce_keys.WALLET_KEY, owner.org_id, legacy) == key
