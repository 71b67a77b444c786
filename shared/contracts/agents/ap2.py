"""AP2 over A2A (issue #22): the extension's URI and the data-part keys an AP2 exchange between agents carries.

The URI and the mandate / receipt keys are the official AP2 repository's (google-agentic-commerce/AP2,
`code/samples/python/src/common/{a2a_extension_utils,constants}.py`); AP2 names no key for asking a merchant
for a checkout, so `ap2.CheckoutRequest` is this platform's, answered with the sample merchant's `ap2.checkout`.
An agent whose config names `ap2_merchant` in `tools` sells the org's products this way: its card declares the
extension (params `roles: ["merchant"]` and the org's `jwks_uri`), and a message carrying these keys is
answered by the platform's merchant (commerce), not by the agent's model. An agent with `ap2_purchase` buys.
"""

AP2_EXTENSION_URI = "https://github.com/google-agentic-commerce/ap2/v1"
AP2_MERCHANT_TOOL = "ap2_merchant"
"""Named in an agent's `tools`: the agent sells over AP2 (no tool for the model: a capability of its A2A server)."""
AP2_PURCHASE_TOOL = "ap2_purchase"
AP2_MERCHANT_SKILL = "ap2:merchant"
"""The card's skill of a merchant agent (the gateway declares the AP2 extension for a card that has it)."""

CHECKOUT_REQUEST_KEY = "ap2.CheckoutRequest"
"""`{"items": [{"id": <product id>, "quantity": n}]}`: price these products, sign a checkout."""
CHECKOUT_KEY = "ap2.checkout"
"""The merchant's answer: `checkout_id`, `checkout_jwt`, `checkout_hash`, `nonce`, `merchant_id`, `amount`,
`currency`, `expires_at`."""
PAYMENT_MANDATE_KEY = "ap2.mandates.PaymentMandateSdJwt"
"""The dSD-JWT chain (open ~~ closed payment mandate) paying the checkout named by `CHECKOUT_ID_KEY`."""
CHECKOUT_MANDATE_KEY = "ap2.mandates.CheckoutMandateSdJwt"
"""The dSD-JWT chain (open ~~ closed checkout mandate) authorizing the contents of the checkout named by
`CHECKOUT_ID_KEY` (the official samples' key). With `PAYMENT_MANDATE_KEY` in the same message it is presented
first, then the payment mandate pays the checkout it checked out."""
CHECKOUT_ID_KEY = "checkout_id"
RECEIPT_KEY = "ap2.PaymentReceipt"
"""The receipt's claims (payment_receipt.json); beside it `receipt_jwt` (the merchant key's signature), `receipt_id`."""
CHECKOUT_RECEIPT_KEY = "ap2.CheckoutReceipt"
"""A checkout mandate's receipt's claims (checkout_receipt.json: `order_id` = the checkout); beside it
`checkout_receipt_jwt` (the merchant key's signature) and `checkout_receipt_id` (AP2's samples name no key for a
checkout receipt: this one is named as `ap2.PaymentReceipt` is)."""
ERROR_KEY = "ap2.error"
"""A refused request: `{code, message, details}` (a refused mandate's `details.reason` names the check)."""
AP2_KEYS = (CHECKOUT_REQUEST_KEY, CHECKOUT_MANDATE_KEY, PAYMENT_MANDATE_KEY)
"""A message carrying one of these is an AP2 request for the merchant."""
