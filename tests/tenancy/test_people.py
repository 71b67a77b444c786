"""A person's own profile: username, display name, bio and avatar, and a username is one person's."""

import asyncpg
import pytest

from shared.contracts.tenancy import PERSON_ME, PERSON_UPDATE
from shared.kernel.errors import Conflict
from shared.runtime.client import BusClient
from tests.tenancy.conftest import Account, add_member, create_org, events_of, unique

pytestmark = pytest.mark.usefixtures("services")


class TestProfile:
    async def test_a_person_changes_their_username_display_name_bio_and_avatar(
        self, bus: BusClient, owner: Account, admin: asyncpg.Connection
    ) -> None:
        customer = await add_member(bus, owner, role="customer")
        change = {"username": unique("ann"), "display_name": "Ann Example", "bio": "Writes about tea.",
                  "avatar": "https://img.example.test/ann.png"}
        updated = await bus.request(PERSON_UPDATE, change, customer.ctx)
        me = await bus.request(PERSON_ME, {}, customer.ctx)
        for person in (updated, me):
            assert (person.username, person.display_name, person.bio, person.avatar) == tuple(change.values())
        assert me.id == customer.person_id
        [event] = await events_of(admin, owner.org_id, "profile_updated")
        assert event["actor_id"] == str(customer.person_id)
        assert (event["payload"]["target_id"], event["payload"]["target_type"]) == (str(customer.person_id), "audience_member")
        assert event["payload"]["metadata"]["changed"] == ["avatar", "bio", "display_name", "username"]

    async def test_only_the_fields_given_change(self, bus: BusClient, owner: Account) -> None:
        member = await add_member(bus, owner)
        before = await bus.request(PERSON_UPDATE, {"bio": "First."}, member.ctx)
        after = await bus.request(PERSON_UPDATE, {"avatar": "https://img.example.test/m.png"}, member.ctx)
        assert (after.bio, after.username, after.display_name) == ("First.", before.username, before.display_name)

    async def test_a_username_someone_else_has_is_a_conflict_and_nothing_changes(
        self, bus: BusClient, platform: Account, owner: Account, admin: asyncpg.Connection
    ) -> None:
        member = await add_member(bus, owner)
        before = await bus.request(PERSON_ME, {}, member.ctx)
        elsewhere = await create_org(bus, platform)  # usernames are unique across orgs, not per org
        for taken in ((await bus.request(PERSON_ME, {}, owner.ctx)).username,
                      (await bus.request(PERSON_ME, {}, elsewhere.ctx)).username):
            with pytest.raises(Conflict, match="username"):
                await bus.request(PERSON_UPDATE, {"username": taken, "display_name": "Impostor"}, member.ctx)
        me = await bus.request(PERSON_ME, {}, member.ctx)
        assert (me.username, me.display_name) == (before.username, "Member")
        assert await events_of(admin, owner.org_id, "profile_updated") == []
