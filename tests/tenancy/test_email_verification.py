"""Email verification: tokens through the mail drop only, single use, expiring; orgs that require it restrict keys."""

import asyncio
import json
import time
from datetime import datetime

import asyncpg
import pytest

from services.tenancy.service_keys import Credentials
from shared.contracts.graph import THING_CREATE
from shared.contracts.tenancy import (
    EMAIL_VERIFICATION_REQUEST,
    EMAIL_VERIFY,
    KEY_CREATE,
    ORG_GET,
    ORG_UPDATE,
    PERSON_ME,
    SIGNUP,
    EmailAlreadyVerified,
    EmailNotVerified,
    VerificationInvalid,
)
from shared.kernel.errors import Forbidden, RateLimited
from shared.runtime.client import BusClient
from shared.tools.sdk.events import Events
from tests.tenancy.conftest import Account, Mailbox, account, add_member, events_of, unique, verify_email

pytestmark = pytest.mark.usefixtures("services")


async def email_of(bus: BusClient, member: Account) -> str:
    return (await bus.request(PERSON_ME, {}, member.ctx)).email


async def requiring_org(bus: BusClient, owner: Account, mailbox: Mailbox) -> Account:
    """The owner verifies their own email, then requires verification of every member; their key is re-verified."""
    await verify_email(bus, mailbox, owner, await email_of(bus, owner))
    await bus.request(ORG_UPDATE, {"settings": {"require_email_verification": True}}, owner.ctx)
    return await account(bus, owner.key)


class TestRequestAndConfirm:
    async def test_the_token_goes_to_the_mail_drop_and_confirming_it_verifies_the_email(
        self, bus: BusClient, owner: Account, mailbox: Mailbox, admin: asyncpg.Connection
    ) -> None:
        email = await email_of(bus, owner)
        sent = await bus.request(EMAIL_VERIFICATION_REQUEST, {}, owner.ctx)
        mail = await mailbox.next_for(email)
        assert sent.email == email and "token" not in sent.model_dump()
        assert mail["purpose"] == "email_verification" and mail["token"].startswith("ev_")
        assert datetime.fromisoformat(mail["expires_at"]) == sent.expires_at
        assert 23.9 * 3600 < (sent.expires_at.timestamp() - time.time()) <= 24 * 3600  # the default TTL
        row = await admin.fetchrow("SELECT * FROM tenancy.email_verifications WHERE person_id = $1", owner.person_id)
        assert len(row["token_hash"]) == 32 and mail["token"] not in str(dict(row))  # only the keyed hash is stored
        assert (await bus.request(PERSON_ME, {}, owner.ctx)).email_verified_at is None

        verified = await bus.request(EMAIL_VERIFY, {"token": mail["token"]})
        assert (verified.person_id, verified.email) == (owner.person_id, email)
        assert (await bus.request(PERSON_ME, {}, owner.ctx)).email_verified_at == verified.email_verified_at
        [sent_event] = await events_of(admin, owner.org_id, "email_verification_sent")
        [verified_event] = await events_of(admin, owner.org_id, "email_verified")
        assert sent_event["actor_id"] == verified_event["actor_id"] == str(owner.person_id)
        assert verified_event["payload"]["metadata"]["email"] == email
        with pytest.raises(EmailAlreadyVerified):
            await bus.request(EMAIL_VERIFICATION_REQUEST, {}, owner.ctx)

    async def test_the_token_never_reaches_an_event(
        self, bus: BusClient, owner: Account, mailbox: Mailbox, admin: asyncpg.Connection
    ) -> None:
        token = await verify_email(bus, mailbox, owner, await email_of(bus, owner))
        events = Events.over_bus(bus, owner.ctx)
        deadline = time.monotonic() + 15
        while True:  # the event log ingests from the stream: wait for both events to be stored
            stored = (await events.query(types=["email_verification_sent", "email_verified"])).events
            if len(stored) == 2 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert sorted(e.type for e in stored) == ["email_verification_sent", "email_verified"]
        secret = token.split("_")[2]
        everything = (await events.query(limit=1000)).events
        assert everything and not any(secret in e.model_dump_json() for e in everything)
        assert not any(secret in json.dumps(e) for e in await events_of(admin, owner.org_id))  # nor in the outbox

    async def test_an_expired_token_fails_and_changes_nothing(
        self, bus: BusClient, owner: Account, mailbox: Mailbox, admin: asyncpg.Connection
    ) -> None:
        email = await email_of(bus, owner)
        await bus.request(EMAIL_VERIFICATION_REQUEST, {}, owner.ctx)
        token = (await mailbox.next_for(email))["token"]
        await admin.execute("UPDATE tenancy.email_verifications SET expires_at = now() - interval '1 second'"
                            " WHERE person_id = $1", owner.person_id)
        with pytest.raises(VerificationInvalid, match="expired") as refused:
            await bus.request(EMAIL_VERIFY, {"token": token})
        assert refused.value.code == "verification_invalid"
        assert (await bus.request(PERSON_ME, {}, owner.ctx)).email_verified_at is None
        assert not await events_of(admin, owner.org_id, "email_verified")

    async def test_a_token_works_once(self, bus: BusClient, owner: Account, mailbox: Mailbox) -> None:
        token = await verify_email(bus, mailbox, owner, await email_of(bus, owner))
        with pytest.raises(VerificationInvalid, match="already been used"):
            await bus.request(EMAIL_VERIFY, {"token": token})

    async def test_forged_and_superseded_tokens_fail(self, bus: BusClient, owner: Account, mailbox: Mailbox) -> None:
        email = await email_of(bus, owner)
        await bus.request(EMAIL_VERIFICATION_REQUEST, {}, owner.ctx)
        first = (await mailbox.next_for(email))["token"]
        forged = first[:-4] + ("AAAA" if not first.endswith("AAAA") else "BBBB")
        for bad in (forged, "not-a-token-at-all", "ev_nothex_" + "A" * 32):
            with pytest.raises(VerificationInvalid):
                await bus.request(EMAIL_VERIFY, {"token": bad})
        await bus.request(EMAIL_VERIFICATION_REQUEST, {}, owner.ctx)
        second = (await mailbox.next_for(email, after=1))["token"]
        with pytest.raises(VerificationInvalid, match="unknown"):  # a new request retires the pending token
            await bus.request(EMAIL_VERIFY, {"token": first})
        await bus.request(EMAIL_VERIFY, {"token": second})

    async def test_requests_are_limited_per_hour(self, bus: BusClient, owner: Account, mailbox: Mailbox) -> None:
        for _ in range(5):
            await bus.request(EMAIL_VERIFICATION_REQUEST, {}, owner.ctx)
        with pytest.raises(RateLimited) as limited:
            await bus.request(EMAIL_VERIFICATION_REQUEST, {}, owner.ctx)
        assert 0 < limited.value.retry_after <= 3600

    async def test_a_key_scoped_to_something_else_cannot_ask(self, bus: BusClient, owner: Account) -> None:
        narrow = await bus.request(KEY_CREATE, {"name": "reader", "scopes": ["things:read"]}, owner.ctx)
        with pytest.raises(Forbidden, match="email:verify"):
            await bus.request(EMAIL_VERIFICATION_REQUEST, {}, (await account(bus, narrow.key)).ctx)


class TestRequiredVerification:
    async def test_an_unverified_member_is_refused_writes_elsewhere_until_verified(
        self, bus: BusClient, owner: Account, mailbox: Mailbox, key_cache: Credentials
    ) -> None:
        owner = await requiring_org(bus, owner, mailbox)
        assert owner.ctx.scopes == ()  # a verified owner keeps a full key
        email = f"{unique('new')}@example.test"
        member = await add_member(bus, owner, email=email)  # joining still works
        assert member.ctx.scopes == ("email:verify",)
        with pytest.raises(Forbidden, match="scopes"):
            await bus.request(THING_CREATE, {"type": "blog_post", "name": "Too early"}, member.ctx)
        with pytest.raises(Forbidden, match="scopes"):
            await bus.request(ORG_GET, {}, member.ctx)

        await asyncio.sleep(max(key_cache.ttl, 1.0) + 0.1)  # past the tombstones of the settings change
        await account(bus, member.key)
        assert key_cache.cached(member.key.split("_")[2]) is not None  # the restricted key is cached now

        await verify_email(bus, mailbox, member, email)
        member = await account(bus, member.key)  # unrestricted at once: verifying dropped the cached key
        assert member.ctx.scopes == ()
        thing = await bus.request(THING_CREATE, {"type": "blog_post", "name": "Now"}, member.ctx)
        assert thing.name == "Now"

    async def test_a_signup_into_a_requiring_org_is_restricted_until_verified(
        self, bus: BusClient, owner: Account, mailbox: Mailbox
    ) -> None:
        owner = await requiring_org(bus, owner, mailbox)
        await bus.request(ORG_UPDATE, {"settings": {"allow_signups": True}}, owner.ctx)
        slug = (await bus.request(ORG_GET, {}, owner.ctx)).slug
        email = f"{unique('fan')}@example.test"
        joined = await bus.request(SIGNUP, {"email": email, "display_name": "Fan", "join": slug})
        fan = await account(bus, joined.api_key)
        assert fan.ctx.scopes == ("email:verify",)
        await verify_email(bus, mailbox, fan, email)
        assert (await account(bus, fan.key)).ctx.scopes == ()

    async def test_an_owner_must_verify_before_requiring_verification(self, bus: BusClient, owner: Account) -> None:
        with pytest.raises(EmailNotVerified) as refused:
            await bus.request(ORG_UPDATE, {"settings": {"require_email_verification": True}}, owner.ctx)
        assert isinstance(refused.value, Forbidden)
        assert not (await bus.request(ORG_GET, {}, owner.ctx)).settings.require_email_verification

    async def test_turning_the_requirement_on_restricts_unverified_members_at_once(
        self, bus: BusClient, owner: Account, mailbox: Mailbox
    ) -> None:
        member = await add_member(bus, owner)
        assert member.ctx.scopes == ()
        await bus.request(THING_CREATE, {"type": "blog_post", "name": "Before"}, member.ctx)
        await requiring_org(bus, owner, mailbox)
        restricted = await account(bus, member.key)  # the settings change dropped the org's cached keys
        assert restricted.ctx.scopes == ("email:verify",)
        with pytest.raises(Forbidden, match="scopes"):
            await bus.request(THING_CREATE, {"type": "blog_post", "name": "After"}, restricted.ctx)
