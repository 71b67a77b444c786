"""`one ap2 ...` as a person types it (a subprocess against the session's stack, as the org owner's key): trust an
issuer's JWKS, grant / list / revoke a mandate, list what an agent holds, list receipts and verify one's signature."""

import json
from pathlib import Path
from typing import Any

from shared.contracts.commerce.ap2 import AP2_CHECKOUT_CREATE, AP2_PRESENT
from shared.kernel.envelope import Protocol
from shared.runtime.client import BusClient
from tests.agents.agent_fixtures import make_agent
from tests.ap2.chains import Purchase, close, jwks, key, open_mandate
from tests.cli.conftest import Cli, one, one_line_error  # noqa: F401 (fixture)
from tests.tenancy.conftest import Account, owner  # noqa: F401 (fixtures)

RANGE = [{"type": "payment.amount_range", "currency": "USD", "max": 5000}]


async def test_trust_grant_revoke_list_and_verify_from_the_cli(
    one: Cli, bus: BusClient, owner: Account, tmp_path: Path  # noqa: F811
) -> None:
    issuer, agent_key = key("cp-cli"), key("agent-cli")
    keys = tmp_path / "jwks.json"
    keys.write_text(json.dumps(jwks(issuer)))
    trusted = (await one("ap2", "trust", "add", "https://cp.cli", str(keys), "--json")).json()
    assert trusted["kids"] == ["cp-cli"]
    assert "https://cp.cli" in (await one("ap2", "trust", "list")).ok()
    one_line_error(await one("ap2", "trust", "add", "x", str(tmp_path / "missing.json")), 2, "no file")

    agent = await make_agent(bus, owner, "openai:unused", deploy=False)
    granted = (await one("ap2", "mandates", "grant", str(agent.id), json.dumps(RANGE), "--json")).json()
    assert granted["agent_id"] == str(agent.id) and granted["mandate"]["vct"] == "mandate.payment.open.1"
    one_line_error(await one("ap2", "mandates", "grant", str(agent.id), '{"type": "x"}'), 2, "JSON list")
    listed = (await one("ap2", "mandates", "list", "--direction", "granted", "--json")).json()
    assert [m["id"] for m in listed["items"]] == [granted["id"]]
    held = (await one("ap2", "mandates", "held", "--agent", str(agent.id), "--json")).json()
    assert [(m["id"], m["remaining"]["uses_left"]) for m in held["items"]] == [(granted["id"], 1)]
    table = (await one("ap2", "mandates", "held", "--agent", str(agent.id), columns=200)).ok()
    assert granted["id"] in table and "5000 USD" in table
    one_line_error(await one("ap2", "mandates", "held", "--agent", "not-a-uuid"), 6, "invalid payload")
    assert "revoked" in (await one("ap2", "mandates", "revoke", granted["id"])).ok()

    made = await bus.request(AP2_CHECKOUT_CREATE, {"amount": 700, "currency": "USD"}, owner.ctx)
    purchase = Purchase(made.merchant_id, made.checkout_hash, made.nonce, 700, id=made.id)
    chain = close(open_mandate(issuer, agent_key, RANGE), agent_key, purchase)
    receipt = await bus.request(AP2_PRESENT, {"checkout_id": str(made.id), "mandate": chain}, owner.ctx,
                                protocol=Protocol.AP2)
    assert str(receipt.id) in (await one("ap2", "receipts", "list", columns=200)).ok()
    verified: dict[str, Any] = (await one("ap2", "receipts", "verify", str(receipt.id), "--json")).json()
    assert verified == {"verified": True, "claims": receipt.receipt}
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"keys": [{**jwks(key("x"))["keys"][0], "kid": receipt_kid(receipt.receipt_jwt)}]}))
    one_line_error(await one("ap2", "receipts", "verify", str(receipt.id), "--jwks", str(other)), 1, "does not verify")


def receipt_kid(token: str) -> str:
    import base64

    header = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
