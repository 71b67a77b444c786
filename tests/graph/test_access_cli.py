"""`one access ...`: an org owner manages field masks and scope rules from the CLI (a real `one` process on the
session's bus), and a customer's reads meet them."""

from shared.contracts.graph import THING_GET
from shared.runtime.client import BusClient
from tests.cli.conftest import Cli, one  # noqa: F401 (fixture)
from tests.graph.conftest import make_thing
from tests.tenancy.conftest import Account, add_member


async def test_masks_and_scopes_from_the_cli(one: Cli, bus: BusClient, owner: Account) -> None:  # noqa: F811
    customer = await add_member(bus, owner, role="customer")
    post = (await make_thing(bus, owner.ctx, "blog_post", "Post", properties={"draftNotes": "raw"})).id
    masked = await one("access", "masks", "set", "customer", "blog_post", "properties.draftNotes")
    assert masked.code == 0, masked.err
    mask_id = masked.out.strip()
    got = await bus.request(THING_GET, {"id": str(post)}, customer.ctx)
    assert got.thing.properties["draftNotes"] == "***"
    listed = await one("access", "masks", "list", "--role", "customer", columns=200)
    assert listed.code == 0 and mask_id in listed.out and "properties.draftNotes" in listed.out, listed.out
    scoped = await one("access", "scopes", "set", "customer", "blog_post", "connected", "--via", "following", "--json")
    assert scoped.code == 0 and '"connection_type": "following"' in scoped.out, scoped.err
    scopes = await one("access", "scopes", "list", "--json")
    assert '"rule": "connected"' in scopes.out
    refused = await one("access", "scopes", "set", "customer", "blog_post", "connected")  # no --via
    assert refused.code != 0
    removed = await one("access", "masks", "remove", mask_id)
    assert removed.code == 0 and removed.out.strip() == mask_id
    assert "no field masks" in (await one("access", "masks", "list")).out
    denied = await one.as_(customer)("access", "masks", "set", "customer", "*", "properties.x")
    assert denied.code != 0 and "access_rules" in denied.err
