"""The commerce service's own settings: payment providers, facilitators, webhooks (same `ONE_` prefix)."""

from pydantic import Field, SecretStr

from shared.kernel.settings import Settings


class CommerceSettings(Settings):
    """Each protocol's settings are added below by its module's owner, grouped and described."""

    # org wallets (x402 payers): services/commerce/wallet.py
    commerce_wallet_secret: SecretStr | None = Field(
        None, description="Server-side secret that seals the org wallets' private keys at rest. Unset = generated once "
        "into `<data_dir>/commerce/wallet-secret`; set it explicitly when replicas don't share a data dir.",
    )
    sealing_keks: SecretStr | None = Field(
        None, description="Key-encryption keys of the secrets sealed at rest (docs/sealing.md), as JSON "
        '`{"current": id, "keys": {id: base64 of 32 bytes}}`. Unset = `<data_dir>/keys/<service>.keks.json`, generated '
        "once and rotated by `one keys rotate`; set, they rotate by changing this setting.",
    )
    commerce_wallet_max_validity: int = Field(
        3600, ge=1, description="Seconds ahead an authorization the wallet signs may stay valid (its validBefore).",
    )

    # ACP checkout and the catalog (services/commerce/service_checkout.py, totals.py, service_products.py)
    commerce_acp_session_ttl: float = Field(21600.0, gt=0, description="Seconds an open ACP checkout session lives "
                                            "before it is `expired`.")
    commerce_tax_rates: dict[str, int] = Field(
        default_factory=lambda: {"standard": 800, "reduced": 500, "digital": 0, "exempt": 0},
        description="Tax rate per product `taxCategory`, in basis points (800 = 8%); an unknown category is taxed "
        "at `standard`. JSON in the environment, e.g. ONE_COMMERCE_TAX_RATES='{\"standard\": 2000}'.")
    commerce_acp_links_base: str = Field("https://merchant.example.com", description="The merchant site the "
                                         "session's `links` (terms, privacy) and `continue_url` point to.")

    # ACP edges: the PSP, idempotency, webhooks (services/commerce/psp.py, service_idempotency.py, webhooks.py)
    commerce_psp: str = Field("test", description="The payment provider checkout charges through; `test` is the "
                              "built-in test-mode Delegate Payment vault (no money moves).")
    commerce_idempotency_ttl: float = Field(86400.0, ge=86400.0, description="Seconds an ACP Idempotency-Key and its "
                                            "answer are kept (at least 24 h, as ACP requires).")
    commerce_idempotency_lease: float = Field(60.0, gt=0, description="Seconds a request holds its key in flight "
                                              "before a retry with the same body may take it over.")
    commerce_sweep_interval: float = Field(300.0, gt=0, description="How often a replica deletes expired "
                                           "idempotency records.")
    commerce_webhook_max_attempts: int = Field(8, ge=1, le=25, description="Attempts per webhook delivery before "
                                               "it is dead.")
    commerce_webhook_backoff_base: float = Field(2.0, gt=0, description="Retry delay after a failed delivery; "
                                                 "doubles each time (jittered).")
    commerce_webhook_backoff_max: float = Field(3600.0, gt=0, description="The retry delay's cap.")
    commerce_webhook_timeout: float = Field(10.0, gt=0, description="Seconds one delivery attempt may take.")
    commerce_webhook_poll: float = Field(1.0, gt=0, description="How often the delivery loop looks for due "
                                         "deliveries (it is also woken when one is queued).")

    # x402 facilitator and the local chain (services/commerce/facilitator.py, chain/)
    commerce_x402_facilitator_url: str | None = Field(
        None, description="An HTTP x402 facilitator (e.g. https://x402.org/facilitator) for a real network; unset = "
        "the built-in one on the local in-process EVM (`make run`, the tests).")
    commerce_x402_facilitator_api_key: SecretStr | None = Field(
        None, description="Bearer token sent to the HTTP facilitator, if it wants one.")
    commerce_x402_facilitator_timeout: float = Field(30.0, gt=0, description="Seconds one HTTP facilitator call may "
                                                     "take (a settle waits for the chain).")
    commerce_x402_token_name: str = Field("USD Coin", description="The local chain's token: its EIP-712 domain name "
                                          "(a price's `extra.name`).")
    commerce_x402_token_version: str = Field("2", description="The local token's EIP-712 domain version.")
    commerce_x402_token_symbol: str = Field("USDC", description="The local token's symbol: the `currency` x402 "
                                            "revenue is counted in.")
    commerce_x402_v1_network: str = Field("one-local", description="The local chain's name in x402 v1 payloads "
                                          "(v1 names networks, v2 uses CAIP-2).")

    # AP2 v2 mandates (services/commerce/service_ap2*.py, ap2/)
    commerce_ap2_max_age: float = Field(600.0, gt=0, description="Seconds after its `iat` a presented closed "
                                        "mandate is still accepted (it is signed for one purchase, just before it).")
    commerce_ap2_clock_skew: float = Field(60.0, ge=0, description="Seconds of clock difference allowed on a "
                                           "mandate's `iat` and `exp`.")
    commerce_ap2_closed_ttl: int = Field(300, gt=0, le=86400, description="Seconds a closed mandate commerce signs "
                                         "for an agent's purchase is valid (its `exp`).")
    commerce_ap2_trust_ttl: float = Field(30.0, ge=0, description="Seconds a replica keeps an org's AP2 trust list "
                                          "in memory (an issuer not in it is looked up again before a refusal).")
    commerce_ap2_graph_poll: float = Field(2.0, gt=0, description="Seconds between two rounds of the AP2 graph sync "
                                           "loop when nothing wakes it (mandate things written after the reply).")
