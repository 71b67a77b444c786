"""The commerce service's subscribers; each protocol's handlers live on their own router, joined here."""

from services.commerce import ap2_replica, checkout_settlement, service_x402_facilitator, webhook_delivery
from services.commerce.app_ap2 import ap2_router
from services.commerce.app_checkout import checkout_router
from services.commerce.app_discounts import discounts_router
from services.commerce.app_idempotency import idempotency_router
from services.commerce.app_payments import payments_router
from services.commerce.app_products import products_router
from services.commerce.app_wallet import wallet_router
from services.commerce.app_webhooks import webhooks_router
from services.commerce.app_x402_facilitator import x402_facilitator_router
from services.commerce.app_x402_prices import x402_prices_router
from services.commerce.settings import CommerceSettings
from shared import __version__
from shared.contracts.keys import KeysRotated, keys_rotate_spec
from shared.runtime import keyring
from shared.runtime.handlers import ServiceRouter
from shared.runtime.service import ServiceDefinition

router = ServiceRouter("commerce")
router.include(x402_prices_router)
router.include(payments_router)
router.include(idempotency_router)
router.include(wallet_router)
router.include(products_router)
router.include(checkout_router)
router.include(discounts_router)
router.include(webhooks_router)
router.include(x402_facilitator_router)
router.include(ap2_router)
router.include(keyring.rotation_router("commerce", keys_rotate_spec("commerce"), KeysRotated))
definition = ServiceDefinition(name="commerce", version=__version__, router=router, settings=CommerceSettings,
                               on_start=[webhook_delivery.start, checkout_settlement.start,
                                         service_x402_facilitator.start, ap2_replica.start],
                               on_stop=[webhook_delivery.stop, checkout_settlement.stop,
                                        service_x402_facilitator.stop, ap2_replica.stop, keyring.close])
