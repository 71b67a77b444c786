"""`one webhooks sources ...` as a person types it, against the real stack."""

import pytest

from tests.cli.conftest import Cli, one, one_line_error  # noqa: F401 (fixtures)
from tests.tenancy.conftest import owner  # noqa: F401 (fixtures)

pytestmark = pytest.mark.timeout(600)  # each command is a process of its own; the machine is shared
MISSING = "00000000-0000-7000-8000-000000000000"


async def test_sources_from_the_cli(one: Cli) -> None:  # noqa: F811
    created = (await one("webhooks", "sources", "create", "clerk", "--map", "payment.succeeded=payment_processed",
                         "--invite", "user.created=data.email_addresses[0].email_address:customer", "--json")).json()
    source_id, secret = created["source"]["id"], created["secret"]
    assert secret.startswith("whsec_") and created["source"]["mappings"]["user.created"]["role"] == "customer"
    listed = (await one("webhooks", "sources", "list")).ok()
    assert source_id in listed and "clerk" in listed and secret not in listed
    shown = (await one("webhooks", "sources", "show", source_id)).ok()
    assert f"/v1/webhooks/in/{source_id}" in shown and secret not in shown
    rotated = (await one("webhooks", "sources", "rotate", source_id, "--grace", "0", "--json")).json()
    assert rotated["secret"] != secret and rotated["source"]["secret_hint"] == rotated["secret"][-4:]
    assert "deleted" in (await one("webhooks", "sources", "delete", source_id)).ok()

    one_line_error(await one("webhooks", "sources", "show", source_id), 5, "not_found")
    one_line_error(await one("webhooks", "sources", "create", "bad", "--map", "nothing"), 2, "--map")
    one_line_error(await one("webhooks", "sources", "create", "bad", "--scheme", "hmac"), 6, "invalid")
    one_line_error(await one("webhooks", "sources", "delete", MISSING), 5, "not_found")
