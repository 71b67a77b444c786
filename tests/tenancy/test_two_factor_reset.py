"""An operator resets another person's two-factor: who may, for whom, what it logs, and that the person can enroll again."""

import asyncio
import json

import asyncpg
import pytest
from nats.aio.client import Client as NatsClient

from services.tenancy.schemas import KEYS_INVALIDATE_SUBJECT
from shared.contracts.tenancy import (
    ORG_UPDATE,
    PERSON_ME,
    TWO_FACTOR_DISABLE,
    TWO_FACTOR_RESET,
    TwoFactorRequired,
    TwoFactorState,
)
from shared.kernel.errors import Forbidden, NotFound
from shared.runtime.client import BusClient
from tests.tenancy.conftest import Account, Mailbox, add_member, create_org, events_of
from tests.tenancy.test_two_factor import enable_two_factor

pytestmark = pytest.mark.usefixtures("services")


async def two_factor_rows(admin: asyncpg.Connection, member: Account) -> tuple[int, int]:
    secrets = await admin.fetchval("SELECT count(*) FROM tenancy.two_factor WHERE person_id = $1", member.person_id)
    codes = await admin.fetchval("SELECT count(*) FROM tenancy.two_factor_backup_codes WHERE person_id = $1", member.person_id)
    return secrets, codes


class TestByAPlatformOwner:
    async def test_resets_a_member_of_any_org_who_can_then_enroll_again(
        self, bus: BusClient, platform: Account, owner: Account, admin: asyncpg.Connection, nc: NatsClient
    ) -> None:
        member = await add_member(bus, owner)
        await enable_two_factor(bus, member)
        invalidations: list[dict] = []

        async def collect(msg) -> None:
            invalidations.append(json.loads(msg.data))

        subscription = await nc.subscribe(KEYS_INVALIDATE_SUBJECT, cb=collect)
        try:
            done = await bus.request(TWO_FACTOR_RESET, {"person_id": str(member.person_id), "org_id": str(owner.org_id)},
                                     platform.ctx)
            for _ in range(50):
                if any(m.get("person_id") == str(member.person_id) for m in invalidations):
                    break
                await asyncio.sleep(0.05)
        finally:
            await subscription.unsubscribe()
        assert (done.org_id, done.person_id, done.was_enabled) == (owner.org_id, member.person_id, True)
        assert {"key_ids": [], "org_id": str(owner.org_id), "person_id": str(member.person_id)} in invalidations
        assert await two_factor_rows(admin, member) == (0, 0)

        [event] = await events_of(admin, owner.org_id, "two_factor_disabled")
        assert event["actor_id"] == str(platform.person_id) and event["payload"]["target_id"] == str(member.person_id)
        assert event["payload"]["metadata"] == {"method": "totp", "reset": True, "resetBy": str(platform.person_id),
                                                "resetByRole": "platform_owner", "wasEnabled": True}
        crossings = [e["payload"]["metadata"] for e in await events_of(admin, owner.org_id, "dashboard_viewed")]
        assert {"crossOrgAccess": True, "operation": "two_factor.reset", "write": True,
                "actorOrgId": str(platform.org_id)} in crossings

        await enable_two_factor(bus, member)  # the member enrols again, with a fresh secret and backup codes
        assert await two_factor_rows(admin, member) == (1, 10)

    async def test_resets_a_secret_the_pepper_no_longer_opens(
        self, bus: BusClient, platform: Account, owner: Account, admin: asyncpg.Connection
    ) -> None:
        member = await add_member(bus, owner)
        await enable_two_factor(bus, member)
        await admin.execute("UPDATE tenancy.two_factor SET secret_sealed = $2 WHERE person_id = $1",
                            member.person_id, b"\x00" * 64)  # as after a pepper change
        with pytest.raises(TwoFactorState, match="cannot be opened"):
            await bus.request(TWO_FACTOR_DISABLE, {"code": "123456"}, member.ctx)
        await bus.request(TWO_FACTOR_RESET, {"person_id": str(member.person_id), "org_id": str(owner.org_id)}, platform.ctx)
        await enable_two_factor(bus, member)

    async def test_without_org_id_names_the_persons_orgs(self, bus: BusClient, platform: Account, owner: Account) -> None:
        with pytest.raises(NotFound, match="name one of their organizations") as missing:
            await bus.request(TWO_FACTOR_RESET, {"person_id": str(owner.person_id)}, platform.ctx)
        assert missing.value.details == {"org_ids": [str(owner.org_id)]}

    async def test_a_person_without_two_factor_has_nothing_to_reset(
        self, bus: BusClient, platform: Account, owner: Account
    ) -> None:
        with pytest.raises(TwoFactorState, match="nothing|no two-factor"):
            await bus.request(TWO_FACTOR_RESET, {"person_id": str(owner.person_id), "org_id": str(owner.org_id)},
                              platform.ctx)


class TestByAnOrgOwner:
    async def test_resets_a_member_of_their_own_org(self, bus: BusClient, owner: Account, admin: asyncpg.Connection) -> None:
        member = await add_member(bus, owner)
        await enable_two_factor(bus, member)
        done = await bus.request(TWO_FACTOR_RESET, {"person_id": str(member.person_id)}, owner.ctx)
        assert done.was_enabled and await two_factor_rows(admin, member) == (0, 0)
        [event] = await events_of(admin, owner.org_id, "two_factor_disabled")
        assert event["actor_id"] == str(owner.person_id)
        assert event["payload"]["metadata"]["resetByRole"] == "org_owner"

    async def test_cannot_reset_a_person_outside_their_org(
        self, bus: BusClient, platform: Account, owner: Account, admin: asyncpg.Connection
    ) -> None:
        stranger = await create_org(bus, platform)
        await enable_two_factor(bus, stranger)
        with pytest.raises(NotFound):
            await bus.request(TWO_FACTOR_RESET, {"person_id": str(stranger.person_id)}, owner.ctx)
        with pytest.raises(Forbidden, match="only a platform owner"):
            await bus.request(TWO_FACTOR_RESET, {"person_id": str(stranger.person_id), "org_id": str(stranger.org_id)},
                              owner.ctx)
        assert await two_factor_rows(admin, stranger) == (1, 10)
        assert not await events_of(admin, stranger.org_id, "two_factor_disabled")

    async def test_cannot_reset_a_member_who_belongs_to_another_org_too(
        self, bus: BusClient, platform: Account, owner: Account, admin: asyncpg.Connection, mailbox: Mailbox
    ) -> None:
        member = await add_member(bus, owner)
        email = (await bus.request(PERSON_ME, {}, member.ctx)).email
        await add_member(bus, await create_org(bus, platform), email=email, mailbox=mailbox)
        await enable_two_factor(bus, member)
        with pytest.raises(Forbidden, match="other organizations"):
            await bus.request(TWO_FACTOR_RESET, {"person_id": str(member.person_id)}, owner.ctx)
        assert await two_factor_rows(admin, member) == (1, 10)

    async def test_cannot_reset_their_own(self, bus: BusClient, owner: Account) -> None:
        await enable_two_factor(bus, owner)
        with pytest.raises(Forbidden, match="two_factor.disable"):
            await bus.request(TWO_FACTOR_RESET, {"person_id": str(owner.person_id)}, owner.ctx)

    async def test_needs_their_own_code_where_their_org_enables_two_factor(
        self, bus: BusClient, owner: Account, admin: asyncpg.Connection
    ) -> None:
        member = await add_member(bus, owner)
        await enable_two_factor(bus, member)
        await bus.request(ORG_UPDATE, {"settings": {"enable_two_factor": True}}, owner.ctx)
        _, backup = await enable_two_factor(bus, owner)
        with pytest.raises(TwoFactorRequired):
            await bus.request(TWO_FACTOR_RESET, {"person_id": str(member.person_id)}, owner.ctx)
        assert await two_factor_rows(admin, member) == (1, 10)
        await bus.request(TWO_FACTOR_RESET, {"person_id": str(member.person_id), "otp": backup[0]}, owner.ctx)
        assert await two_factor_rows(admin, member) == (0, 0)


class TestByAMember:
    async def test_an_org_user_cannot_reset(self, bus: BusClient, owner: Account, admin: asyncpg.Connection) -> None:
        member, colleague = await add_member(bus, owner), await add_member(bus, owner)
        await enable_two_factor(bus, colleague)
        with pytest.raises(Forbidden, match="two_factor"):
            await bus.request(TWO_FACTOR_RESET, {"person_id": str(colleague.person_id)}, member.ctx)
        assert await two_factor_rows(admin, colleague) == (1, 10)

    async def test_a_role_granted_the_reset_cannot_reset_an_owner(self, bus: BusClient, owner: Account) -> None:
        admin_member = await add_member(bus, owner, role="org_user", permissions=["two_factor:reset"])
        await enable_two_factor(bus, owner)
        with pytest.raises(Forbidden, match="only an owner"):
            await bus.request(TWO_FACTOR_RESET, {"person_id": str(owner.person_id)}, admin_member.ctx)
