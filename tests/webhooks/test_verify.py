"""The signature checks and body paths on their own: no stack, the official class as the signer."""

import base64
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from services.tenancy.service_webhook_receive import at_path, parse_body
from services.tenancy.webhook_verify import HmacScheme, standard_key, verify_hmac, verify_standard
from shared.contracts.tenancy.webhooks import (
    WebhookSignatureInvalid,
    WebhookSignatureMissing,
    WebhookTimestampOutOfTolerance,
)
from tests.webhooks.conftest import hmac_signature

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY = b'{"type": "user.created", "data": {"id": 1}}'


def _headers(secret: str = SECRET, at: float | None = None, msg_id: str = "msg_1") -> dict[str, str]:
    moment = datetime.fromtimestamp(time.time() if at is None else at, UTC)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(moment.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, moment, BODY)}


def test_a_standard_signature_verifies_with_any_accepted_secret_among_several_signatures() -> None:
    headers = _headers()
    headers["webhook-signature"] = "v1,bm90LXRoaXMtb25l " + headers["webhook-signature"]
    assert verify_standard([SECRET], BODY, headers, 300, time.time()) == "msg_1"
    other = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"
    assert verify_standard([other, SECRET], BODY, headers, 300, time.time()) == "msg_1"  # a rotation's grace


@pytest.mark.parametrize(("change", "error"), [
    ({"webhook-signature": None}, WebhookSignatureMissing),
    ({"webhook-id": ""}, WebhookSignatureMissing),
    ({"webhook-timestamp": "1.5e9"}, WebhookSignatureInvalid),
    ({"webhook-timestamp": "\u00b9\u00b2"}, WebhookSignatureInvalid),  # superscript digits: isdigit(), not int()
    ({"webhook-signature": "v1,AAAA"}, WebhookSignatureInvalid),
    ({"webhook-timestamp": str(int(time.time()) - 301)}, WebhookTimestampOutOfTolerance),
    ({"webhook-id": "x" * 201}, WebhookSignatureInvalid),
])
def test_a_standard_webhook_is_refused_with_the_precise_code(change: dict[str, str | None], error: type) -> None:
    headers = {k: v for k, v in (_headers() | change).items() if v is not None}
    with pytest.raises(error):
        verify_standard([SECRET], BODY, headers, 300, time.time())


def test_standard_secrets_must_be_whsec_base64_of_16_bytes_or_more() -> None:
    assert len(standard_key(SECRET)) == 24
    assert standard_key("whsec_" + base64.b64encode(b"k" * 20).decode()) == b"k" * 20  # padded base64 too
    for bad in ("whsec_c2hvcnQ=", "whsec_!!!not-base64!!!", "whsec_"):
        with pytest.raises(ValueError):
            standard_key(bad)


def test_hmac_with_prefix_hex_in_any_case_and_the_body_digest_as_id() -> None:
    scheme = HmacScheme("x-signature", "hex", "sha256=", None, None)
    signature = "sha256=" + hmac_signature("s" * 20, BODY).upper()
    webhook_id = verify_hmac(["s" * 20], scheme, BODY, {"x-signature": signature}, 300, time.time())
    assert webhook_id.startswith("sha256:") and len(webhook_id) == 71
    with pytest.raises(WebhookSignatureInvalid):
        verify_hmac(["s" * 20], scheme, BODY, {"x-signature": signature[7:]}, 300, time.time())  # no prefix


def test_paths_into_the_body_and_bodies_postgres_cannot_store() -> None:
    document = {"data": {"email_addresses": [{"email_address": "a@b.test"}], "n": 1}}
    assert at_path(document, "data.email_addresses[0].email_address") == "a@b.test"
    assert at_path(document, "data.email_addresses[3].email_address") is None
    assert at_path(document, "data.n.deeper") is None and at_path(["x"], "type") is None
    assert parse_body('{"a": "\\u0000"}') is None and parse_body('{"a": NaN}') is None and parse_body("{") is None
    assert parse_body('{"a": [1, 2]}') == {"a": [1, 2]}
    assert parse_body("[" * 33 + "]" * 33) is None and parse_body("[" * 100_000 + "]" * 100_000) is None
    assert parse_body("[" * 32 + "]" * 32) is not None and parse_body('["' + "[" * 40 + '"]') == ["[" * 40]
    assert parse_body('"\\"' * 100_000) is None  # no quadratic scan: an escaped quote does not end a string
