"""Membership (`member_of`): invitations, roles, leaving, and the rule that an org keeps an owner."""

import asyncio
import json
import logging
from datetime import datetime

import asyncpg
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.contracts.tenancy import (
    MEMBER_ACCEPT,
    MEMBER_INVITE,
    MEMBER_LIST,
    MEMBER_REMOVE,
    MEMBER_ROLE,
    ORG_GET,
    ORG_UPDATE,
    PERSON_ME,
    PERSON_UPDATE,
    VERIFY_KEY,
    DomainNotAllowed,
    InviteInvalid,
    InviteNeedsSignIn,
    LastOwner,
)
from shared.kernel.errors import Forbidden, Unauthenticated
from shared.runtime.client import BusClient
from tests.tenancy.conftest import Account, Mailbox, account, add_member, create_org, events_of, unique

pytestmark = pytest.mark.usefixtures("services")


class TestInvite:
    async def test_an_accepted_invite_makes_a_member_with_the_member_of_metadata(
        self, bus: BusClient, owner: Account, admin: asyncpg.Connection
    ) -> None:
        email = f"{unique('ann')}@example.test"
        issued = await bus.request(MEMBER_INVITE, {"email": email, "permissions": ["reports:export"]}, owner.ctx)
        assert issued.invite.expires_at > issued.invite.invited_at
        joined = await bus.request(MEMBER_ACCEPT, {"token": issued.token, "display_name": "Ann"})
        member = joined.membership
        assert (member.role, member.permissions, member.invited_by) == ("org_user", ["reports:export"], owner.person_id)
        assert member.invited_at == issued.invite.invited_at and member.joined_at >= member.invited_at
        assert joined.person.email == email and joined.organization.usage.users == 2
        events = await events_of(admin, owner.org_id)
        invited = next(e for e in events if e["type"] == "user_invited_to_org")
        assert invited["actor_id"] == str(owner.person_id) and invited["payload"]["metadata"]["email"] == email
        joined_event = next(e for e in events if e["type"] == "user_joined_org" and e["actor_id"] == str(joined.person.id))
        assert joined_event["payload"]["target_id"] == str(joined.person.id)
        assert joined_event["payload"]["metadata"]["connection"] == "member_of"
        assert any(e["type"] == "user_registered" and e["payload"]["target_id"] == str(joined.person.id) for e in events)
        listed = await bus.request(MEMBER_LIST, {}, owner.ctx)
        assert {m.email for m in listed.members} == {f"owner@{joined.organization.slug}.test", email}

    async def test_an_expired_invite_fails(self, bus: BusClient, owner: Account, admin: asyncpg.Connection) -> None:
        issued = await bus.request(MEMBER_INVITE, {"email": "late@example.test"}, owner.ctx)
        await admin.execute("UPDATE tenancy.invites SET expires_at = now() - interval '1 second' WHERE id = $1", issued.invite.id)
        with pytest.raises(InviteInvalid, match="expired"):
            await bus.request(MEMBER_ACCEPT, {"token": issued.token})

    async def test_an_invite_works_once(self, bus: BusClient, owner: Account) -> None:
        issued = await bus.request(MEMBER_INVITE, {"email": f"{unique('once')}@example.test"}, owner.ctx)
        await bus.request(MEMBER_ACCEPT, {"token": issued.token})
        with pytest.raises(InviteInvalid, match="already been used"):
            await bus.request(MEMBER_ACCEPT, {"token": issued.token})

    async def test_a_forged_token_fails(self, bus: BusClient, owner: Account) -> None:
        issued = await bus.request(MEMBER_INVITE, {"email": "x@example.test"}, owner.ctx)
        forged = issued.token[:-4] + ("AAAA" if not issued.token.endswith("AAAA") else "BBBB")
        with pytest.raises(InviteInvalid, match="unknown"):
            await bus.request(MEMBER_ACCEPT, {"token": forged})

    async def test_allowed_domains_are_enforced(self, bus: BusClient, owner: Account) -> None:
        await bus.request(ORG_UPDATE, {"settings": {"allowed_domains": ["acme.test"]}}, owner.ctx)
        with pytest.raises(DomainNotAllowed):
            await bus.request(MEMBER_INVITE, {"email": "eve@evil.test"}, owner.ctx)
        await bus.request(MEMBER_INVITE, {"email": "bob@acme.test"}, owner.ctx)

    async def test_an_org_user_cannot_invite_or_make_owners(self, bus: BusClient, owner: Account) -> None:
        user = await add_member(bus, owner)
        with pytest.raises(Forbidden):
            await bus.request(MEMBER_INVITE, {"email": "friend@example.test"}, user.ctx)
        with pytest.raises(Forbidden):
            await bus.request(MEMBER_ROLE, {"person_id": str(user.person_id), "role": "org_owner"}, user.ctx)

    async def test_one_person_belongs_to_several_orgs_with_a_current_one(
        self, bus: BusClient, platform: Account, owner: Account, mailbox: Mailbox
    ) -> None:
        email = f"{unique('multi')}@example.test"
        first = await add_member(bus, owner, email=email)
        other_owner = await create_org(bus, platform)
        second = await add_member(bus, other_owner, email=email, mailbox=mailbox)
        assert first.person_id == second.person_id and first.org_id != second.org_id
        me = await bus.request(PERSON_ME, {}, second.ctx)
        assert set(me.organizations) == {first.org_id, second.org_id} and me.current_org_id == first.org_id
        me = await bus.request(PERSON_UPDATE, {"current_org_id": str(second.org_id)}, second.ctx)
        assert me.current_org_id == second.org_id
        with pytest.raises(Forbidden):
            await bus.request(PERSON_UPDATE, {"current_org_id": str(platform.org_id)}, second.ctx)


    async def test_an_invite_issued_before_the_person_registered_is_accepted_only_signed_in_as_them(
        self, bus: BusClient, platform: Account, owner: Account, admin: asyncpg.Connection
    ) -> None:
        """The token went to the inviter: once the email has an account, the token alone must not give its key."""
        email = f"{unique('late')}@example.test"
        issued = await bus.request(MEMBER_INVITE, {"email": email}, owner.ctx)
        assert issued.delivery == issued.invite.delivery == "token" and issued.token.startswith("inv_")
        someone = await add_member(bus, await create_org(bus, platform), email=email)  # registers elsewhere meanwhile
        keys_before = await admin.fetchval("SELECT count(*) FROM tenancy.api_keys WHERE person_id = $1", someone.person_id)
        events_before = await events_of(admin, owner.org_id)
        for inviter in (None, owner.ctx):  # the token alone, and the inviter's own key
            with pytest.raises(InviteNeedsSignIn, match=f"sign in as {email}") as refused:
                await bus.request(MEMBER_ACCEPT, {"token": issued.token}, inviter)
            assert isinstance(refused.value, Forbidden)
        listed = await bus.request(MEMBER_LIST, {}, owner.ctx)
        assert [m.person_id for m in listed.members] == [owner.person_id]
        assert [i.id for i in listed.pending_invites] == [issued.invite.id]
        assert await admin.fetchval("SELECT count(*) FROM tenancy.api_keys WHERE person_id = $1", someone.person_id) == keys_before
        assert await events_of(admin, owner.org_id) == events_before

        joined = await bus.request(MEMBER_ACCEPT, {"token": issued.token}, someone.ctx)
        assert joined.person.id == someone.person_id and set(joined.person.organizations) == {someone.org_id, owner.org_id}
        assert (await account(bus, joined.api_key)).person_id == someone.person_id


class TestInviteByEmail:
    """An address that already has an account gets its invitation by mail; the inviter never sees the token."""

    async def test_a_person_who_left_every_org_is_invited_back_and_joins_with_the_mailed_token(
        self, bus: BusClient, platform: Account, owner: Account, mailbox: Mailbox, admin: asyncpg.Connection
    ) -> None:
        email = f"{unique('back')}@example.test"
        former = await add_member(bus, await create_org(bus, platform), email=email)
        await bus.request(MEMBER_REMOVE, {"person_id": str(former.person_id)}, former.ctx)  # leaves their only org
        assert await admin.fetchval("SELECT count(*) FROM tenancy.memberships WHERE person_id = $1", former.person_id) == 0
        assert await admin.fetchval("SELECT bool_and(revoked_at IS NOT NULL) FROM tenancy.api_keys WHERE person_id = $1",
                                    former.person_id)
        with pytest.raises(Unauthenticated):  # no key left to sign in with
            await bus.request(VERIFY_KEY, {"key": former.key})

        issued = await bus.request(MEMBER_INVITE, {"email": email, "role": "customer"}, owner.ctx)
        assert (issued.delivery, issued.invite.delivery, issued.token) == ("email", "email", None)
        mail = await mailbox.next_for(email)
        assert mail["purpose"] == "invitation" and mail["token"].startswith(f"inv_{issued.invite.id.hex}_")
        assert datetime.fromisoformat(mail["expires_at"]) == issued.invite.expires_at and mail["role"] == "customer"
        slug = (await bus.request(ORG_GET, {}, owner.ctx)).slug
        assert mail["organization"].endswith(f"({slug})")
        assert await admin.fetchval("SELECT delivery FROM tenancy.invites WHERE id = $1", issued.invite.id) == "email"

        joined = await bus.request(MEMBER_ACCEPT, {"token": mail["token"]})  # no auth context: the token alone
        assert joined.person.id == former.person_id and joined.person.organizations == [owner.org_id]
        assert (joined.membership.role, joined.membership.invited_by) == ("customer", owner.person_id)
        back = await account(bus, joined.api_key)
        assert (back.person_id, back.org_id) == (former.person_id, owner.org_id)
        assert (await bus.request(PERSON_ME, {}, back.ctx)).email == email  # the new key works
        listed = await bus.request(MEMBER_LIST, {}, owner.ctx)
        assert former.person_id in {m.person_id for m in listed.members} and not listed.pending_invites
        [joined_event] = [e for e in await events_of(admin, owner.org_id, "user_joined_org")
                          if e["payload"]["target_id"] == str(former.person_id)]
        assert joined_event["actor_id"] == str(former.person_id)
        assert joined_event["payload"]["metadata"]["connection"] == "member_of"
        assert not [e for e in await events_of(admin, owner.org_id, "user_registered")  # the same person, not a new one
                    if e["payload"]["target_id"] == str(former.person_id)]
        with pytest.raises(InviteInvalid, match="already been used"):
            await bus.request(MEMBER_ACCEPT, {"token": mail["token"]})

    async def test_the_inviter_never_holds_the_token_of_an_invite_mailed_to_an_existing_account(
        self, bus: BusClient, platform: Account, owner: Account, mailbox: Mailbox, admin: asyncpg.Connection,
        spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG)
        email = f"{unique('taken')}@example.test"
        someone = await add_member(bus, await create_org(bus, platform), email=email)
        issued = await bus.request(MEMBER_INVITE, {"email": email}, owner.ctx)
        secret = (await mailbox.next_for(email))["token"].split("_")[2]
        listed = await bus.request(MEMBER_LIST, {}, owner.ctx)
        [invited] = await events_of(admin, owner.org_id, "user_invited_to_org")
        metadata = invited["payload"]["metadata"]
        assert metadata["delivery"] == "email" and "token" not in metadata
        for seen in (issued.model_dump_json(), listed.model_dump_json(), json.dumps(await events_of(admin, owner.org_id)),
                     caplog.text, repr([(s.attributes, s.events) for s in spans.get_finished_spans()])):
            assert secret not in seen

        guessed = f"inv_{issued.invite.id.hex}_{'A1b2' * 8}"  # all the inviter knows is the invite's id
        for caller in (None, owner.ctx):
            with pytest.raises(InviteInvalid, match="unknown"):
                await bus.request(MEMBER_ACCEPT, {"token": guessed}, caller)
        assert await admin.fetchval("SELECT count(*) FROM tenancy.memberships WHERE org_id = $1 AND person_id = $2",
                                    owner.org_id, someone.person_id) == 0
        assert [i.id for i in (await bus.request(MEMBER_LIST, {}, owner.ctx)).pending_invites] == [issued.invite.id]


class TestRolesAndRemoval:
    async def test_an_owner_changes_a_members_role_and_it_reaches_the_key(self, bus: BusClient, owner: Account) -> None:
        user = await add_member(bus, owner)
        changed = await bus.request(MEMBER_ROLE, {"person_id": str(user.person_id), "role": "customer"}, owner.ctx)
        assert changed.role == "customer"
        assert (await bus.request(VERIFY_KEY, {"key": user.key})).role == "customer"

    async def test_the_last_owner_cannot_leave_or_be_demoted(self, bus: BusClient, owner: Account) -> None:
        with pytest.raises(LastOwner, match="cannot leave"):
            await bus.request(MEMBER_REMOVE, {"person_id": str(owner.person_id)}, owner.ctx)
        with pytest.raises(LastOwner, match="cannot be demoted"):
            await bus.request(MEMBER_ROLE, {"person_id": str(owner.person_id), "role": "org_user"}, owner.ctx)
        members = await bus.request(MEMBER_LIST, {}, owner.ctx)
        assert [m.role for m in members.members] == ["org_owner"]

    async def test_an_owner_may_leave_once_there_is_another(self, bus: BusClient, owner: Account) -> None:
        second = await add_member(bus, owner, role="org_owner")
        left = await bus.request(MEMBER_REMOVE, {"person_id": str(owner.person_id)}, owner.ctx)
        assert left.revoked_keys
        with pytest.raises(LastOwner):
            await bus.request(MEMBER_REMOVE, {"person_id": str(second.person_id)}, second.ctx)

    async def test_concurrent_owners_leaving_leave_one_owner(self, bus: BusClient, owner: Account) -> None:
        second = await add_member(bus, owner, role="org_owner")
        results = await asyncio.gather(
            bus.request(MEMBER_REMOVE, {"person_id": str(owner.person_id)}, owner.ctx),
            bus.request(MEMBER_REMOVE, {"person_id": str(second.person_id)}, second.ctx),
            return_exceptions=True,
        )
        assert sum(isinstance(r, LastOwner) for r in results) == 1

    async def test_a_removed_member_loses_access_and_their_keys(
        self, bus: BusClient, owner: Account, admin: asyncpg.Connection
    ) -> None:
        user = await add_member(bus, owner)
        removed = await bus.request(MEMBER_REMOVE, {"person_id": str(user.person_id)}, owner.ctx)
        assert removed.revoked_keys == [user.key.split("_")[2]]
        with pytest.raises(Unauthenticated):
            await bus.request(VERIFY_KEY, {"key": user.key})
        with pytest.raises(Forbidden, match="not a member"):
            await bus.request(MEMBER_LIST, {}, user.ctx)
        [event] = await events_of(admin, owner.org_id, "user_removed_from_org")
        assert event["payload"]["target_id"] == str(user.person_id)
        assert (await bus.request(MEMBER_LIST, {}, owner.ctx)).members[0].role == "org_owner"

    async def test_a_member_may_leave_on_their_own(self, bus: BusClient, owner: Account) -> None:
        customer = await add_member(bus, owner, role="customer")
        await bus.request(MEMBER_REMOVE, {"person_id": str(customer.person_id)}, customer.ctx)
        assert len((await bus.request(MEMBER_LIST, {}, owner.ctx)).members) == 1
        assert (await account(bus, owner.key)).ctx.role == "org_owner"
