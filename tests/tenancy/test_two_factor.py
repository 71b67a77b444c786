"""Two-factor (TOTP): enrolment, single-use codes, backup codes, and the sensitive operations an org guards with it."""

import base64
import time
from typing import Any

import asyncpg
import pytest

from shared.contracts.tenancy import (
    KEY_CREATE,
    KEY_LIST,
    MEMBER_LIST,
    MEMBER_REMOVE,
    MEMBER_ROLE,
    ORG_GET,
    ORG_UPDATE,
    POLICY_ADD,
    POLICY_REMOVE,
    ROLE_CREATE,
    TWO_FACTOR_CONFIRM,
    TWO_FACTOR_DISABLE,
    TWO_FACTOR_ENROLL,
    TwoFactorCodeInvalid,
    TwoFactorRequired,
    TwoFactorState,
)
from shared.kernel.errors import Forbidden
from shared.runtime.client import BusClient
from tests.tenancy.conftest import Account, account, add_member, events_of
from tests.tenancy.test_totp import reference_totp

pytestmark = pytest.mark.usefixtures("services")


class Device:
    """An authenticator app: the secret from enrolment, codes by RFC 6238 (the test's own implementation)."""

    def __init__(self, secret_text: str) -> None:
        self.secret = base64.b32decode(secret_text + "=" * (-len(secret_text) % 8))

    def code(self, steps_ahead: int = 0) -> str:
        """The code of the current step, or of a later one (still inside the ±1 step window the service allows)."""
        return reference_totp(self.secret, time.time() + 30 * steps_ahead)


async def enable_two_factor(bus: BusClient, member: Account) -> tuple[Device, list[str]]:
    enrolment = await bus.request(TWO_FACTOR_ENROLL, {}, member.ctx)
    device = Device(enrolment.secret)
    enabled = await bus.request(TWO_FACTOR_CONFIRM, {"code": device.code()}, member.ctx)
    return device, enabled.backup_codes


class TestEnrolment:
    async def test_a_code_from_the_enrolled_secret_enables_it_with_backup_codes(
        self, bus: BusClient, owner: Account, admin: asyncpg.Connection
    ) -> None:
        enrolment = await bus.request(TWO_FACTOR_ENROLL, {}, owner.ctx)
        assert enrolment.otpauth_uri.startswith("otpauth://totp/ONE:owner@")
        assert f"secret={enrolment.secret}" in enrolment.otpauth_uri
        device = Device(enrolment.secret)
        enabled = await bus.request(TWO_FACTOR_CONFIRM, {"code": device.code()}, owner.ctx)
        assert len(enabled.backup_codes) == len(set(enabled.backup_codes)) == 10

        row = await admin.fetchrow("SELECT * FROM tenancy.two_factor WHERE person_id = $1", owner.person_id)
        assert row["enabled_at"] == enabled.enabled_at and device.secret not in bytes(row["secret_sealed"])
        stored = [bytes(r["code_hash"]) for r in await admin.fetch(
            "SELECT code_hash FROM tenancy.two_factor_backup_codes WHERE person_id = $1", owner.person_id)]
        assert len(stored) == 10 and not any(c.encode() in h for c in enabled.backup_codes for h in stored)
        [event] = await events_of(admin, owner.org_id, "two_factor_enabled")
        assert event["actor_id"] == str(owner.person_id)
        assert event["payload"]["metadata"] == {"method": "totp", "backupCodesGenerated": 10}
        assert enabled.backup_codes[0] not in str(await events_of(admin, owner.org_id))
        with pytest.raises(TwoFactorState, match="already enabled"):
            await bus.request(TWO_FACTOR_ENROLL, {}, owner.ctx)

    async def test_a_wrong_code_enables_nothing(self, bus: BusClient, owner: Account, admin: asyncpg.Connection) -> None:
        enrolment = await bus.request(TWO_FACTOR_ENROLL, {}, owner.ctx)
        wrong = f"{(int(Device(enrolment.secret).code()) + 1) % 10**6:06d}"
        with pytest.raises(TwoFactorCodeInvalid):
            await bus.request(TWO_FACTOR_CONFIRM, {"code": wrong}, owner.ctx)
        with pytest.raises(TwoFactorState, match="not enabled"):
            await bus.request(TWO_FACTOR_DISABLE, {"code": wrong}, owner.ctx)
        assert not await events_of(admin, owner.org_id, "two_factor_enabled")

    async def test_confirming_needs_an_enrolment(self, bus: BusClient, owner: Account) -> None:
        with pytest.raises(TwoFactorState, match="enroll first"):
            await bus.request(TWO_FACTOR_CONFIRM, {"code": "123456"}, owner.ctx)

    async def test_a_replayed_code_is_refused(self, bus: BusClient, owner: Account) -> None:
        enrolment = await bus.request(TWO_FACTOR_ENROLL, {}, owner.ctx)
        device = Device(enrolment.secret)
        code = device.code()
        await bus.request(TWO_FACTOR_CONFIRM, {"code": code}, owner.ctx)
        with pytest.raises(TwoFactorCodeInvalid, match="used already"):
            await bus.request(TWO_FACTOR_DISABLE, {"code": code}, owner.ctx)
        disabled = await bus.request(TWO_FACTOR_DISABLE, {"code": device.code(steps_ahead=1)}, owner.ctx)
        assert not disabled.used_backup_code

    async def test_backup_codes_work_once_and_disable_logs_its_event(
        self, bus: BusClient, owner: Account, admin: asyncpg.Connection
    ) -> None:
        await bus.request(ORG_UPDATE, {"settings": {"enable_two_factor": True}}, owner.ctx)
        _, backup = await enable_two_factor(bus, owner)
        await bus.request(KEY_CREATE, {"name": "with a backup code", "otp": backup[0]}, owner.ctx)
        with pytest.raises(TwoFactorCodeInvalid, match="backup code"):
            await bus.request(KEY_CREATE, {"name": "again", "otp": backup[0]}, owner.ctx)
        disabled = await bus.request(TWO_FACTOR_DISABLE, {"code": backup[1].upper()}, owner.ctx)
        assert disabled.used_backup_code
        [event] = await events_of(admin, owner.org_id, "two_factor_disabled")
        assert event["payload"]["metadata"] == {"method": "totp", "usedBackupCode": True}
        assert await admin.fetchval("SELECT count(*) FROM tenancy.two_factor_backup_codes WHERE person_id = $1",
                                    owner.person_id) == 0
        with pytest.raises(TwoFactorRequired):  # the org still requires it: enrol again
            await bus.request(KEY_CREATE, {"name": "off", "otp": backup[2]}, owner.ctx)

    async def test_a_key_scoped_to_something_else_cannot_manage_two_factor(self, bus: BusClient, owner: Account) -> None:
        narrow = await bus.request(KEY_CREATE, {"name": "ci", "scopes": ["things:*"]}, owner.ctx)
        with pytest.raises(Forbidden, match="two_factor:manage"):
            await bus.request(TWO_FACTOR_ENROLL, {}, (await account(bus, narrow.key)).ctx)


def sensitive_operations(member: Account, role_name: str, policy_id: Any) -> list[tuple[Any, dict[str, Any]]]:
    return [
        (KEY_CREATE, {"name": "ops"}),
        (ROLE_CREATE, {"name": role_name}),
        (POLICY_ADD, {"role": "org_user", "resource": "reports", "action": "export"}),
        (POLICY_REMOVE, {"policy_id": str(policy_id)}),
        (MEMBER_ROLE, {"person_id": str(member.person_id), "role": "customer"}),
        (ORG_UPDATE, {"name": "Renamed"}),
        (MEMBER_REMOVE, {"person_id": str(member.person_id)}),
    ]


class TestRequiredTwoFactor:
    async def test_a_sensitive_operation_needs_two_factor_and_a_current_code(
        self, bus: BusClient, owner: Account
    ) -> None:
        await bus.request(ORG_UPDATE, {"settings": {"enable_two_factor": True}}, owner.ctx)
        with pytest.raises(TwoFactorRequired, match="enable it first") as refused:
            await bus.request(KEY_CREATE, {"name": "no 2fa"}, owner.ctx)
        assert isinstance(refused.value, Forbidden) and refused.value.code == "two_factor_required"
        device, _ = await enable_two_factor(bus, owner)
        with pytest.raises(TwoFactorRequired, match="pass it as `otp`"):
            await bus.request(KEY_CREATE, {"name": "no code"}, owner.ctx)
        code = device.code(steps_ahead=1)  # the confirmation used the current step
        issued = await bus.request(KEY_CREATE, {"name": "with a code", "otp": code}, owner.ctx)
        assert issued.info.name == "with a code"
        with pytest.raises(TwoFactorCodeInvalid, match="used already"):
            await bus.request(KEY_CREATE, {"name": "replayed", "otp": code}, owner.ctx)
        names = {k.name for k in (await bus.request(KEY_LIST, {}, owner.ctx)).keys}
        assert "with a code" in names and not {"no 2fa", "no code", "replayed"} & names  # refusals wrote nothing

    async def test_every_sensitive_operation_is_guarded(self, bus: BusClient, owner: Account) -> None:
        member = await add_member(bus, owner)
        policy = await bus.request(POLICY_ADD, {"role": "org_user", "resource": "drafts", "action": "publish"}, owner.ctx)
        await bus.request(ORG_UPDATE, {"settings": {"enable_two_factor": True}}, owner.ctx)
        _, backup = await enable_two_factor(bus, owner)
        for number, (spec, payload) in enumerate(sensitive_operations(member, "auditor", policy.id)):
            with pytest.raises(TwoFactorRequired):
                await bus.request(spec, payload, owner.ctx)
            await bus.request(spec, {**payload, "otp": backup[number]}, owner.ctx)  # a backup code stands in for a code
        assert (await bus.request(ORG_GET, {}, owner.ctx)).name == "Renamed"
        assert member.person_id not in {m.person_id for m in (await bus.request(MEMBER_LIST, {}, owner.ctx)).members}

    async def test_a_refused_operation_changes_nothing(self, bus: BusClient, owner: Account) -> None:
        member = await add_member(bus, owner)
        await bus.request(ORG_UPDATE, {"settings": {"enable_two_factor": True}}, owner.ctx)
        await enable_two_factor(bus, owner)
        with pytest.raises(TwoFactorCodeInvalid):
            await bus.request(MEMBER_ROLE, {"person_id": str(member.person_id), "role": "customer", "otp": "000000"}, owner.ctx)
        with pytest.raises(TwoFactorRequired):
            await bus.request(ORG_UPDATE, {"settings": {"enable_two_factor": False}}, owner.ctx)
        roles = {m.person_id: m.role for m in (await bus.request(MEMBER_LIST, {}, owner.ctx)).members}
        assert roles[member.person_id] == "org_user"
        assert (await bus.request(ORG_GET, {}, owner.ctx)).settings.enable_two_factor

    async def test_without_the_setting_no_code_is_asked_and_leaving_never_needs_one(
        self, bus: BusClient, owner: Account
    ) -> None:
        await enable_two_factor(bus, owner)  # the person has it; the org does not require it
        await bus.request(KEY_CREATE, {"name": "no code needed"}, owner.ctx)
        member = await add_member(bus, owner)
        await bus.request(ORG_UPDATE, {"settings": {"enable_two_factor": True}}, owner.ctx)
        await bus.request(MEMBER_REMOVE, {"person_id": str(member.person_id)}, member.ctx)  # leaving

    async def test_a_platform_owner_is_bound_by_the_platform_orgs_setting_not_the_target_orgs(
        self, bus: BusClient, platform: Account, owner: Account
    ) -> None:
        await bus.request(ORG_UPDATE, {"settings": {"enable_two_factor": True}}, owner.ctx)
        org = await bus.request(ORG_UPDATE, {"org_id": str(owner.org_id), "plan": "pro"}, platform.ctx)
        assert org.plan == "pro"  # the platform org does not enable two-factor, so no code is asked
        with pytest.raises(TwoFactorRequired):  # while the org's own owner needs one
            await bus.request(ORG_UPDATE, {"name": "Mine"}, owner.ctx)

    async def test_a_platform_owner_is_bound_by_the_platform_orgs_own_setting(
        self, bus: BusClient, platform: Account, owner: Account
    ) -> None:
        _, backup = await enable_two_factor(bus, platform)
        try:
            await bus.request(ORG_UPDATE, {"settings": {"enable_two_factor": True}}, platform.ctx)
            try:
                with pytest.raises(TwoFactorRequired):  # also when acting on another org
                    await bus.request(ORG_UPDATE, {"org_id": str(owner.org_id), "plan": "pro"}, platform.ctx)
                await bus.request(ORG_UPDATE, {"org_id": str(owner.org_id), "plan": "pro", "otp": backup[0]}, platform.ctx)
            finally:
                await bus.request(ORG_UPDATE, {"settings": {"enable_two_factor": False}, "otp": backup[1]}, platform.ctx)
        finally:
            await bus.request(TWO_FACTOR_DISABLE, {"code": backup[2]}, platform.ctx)
