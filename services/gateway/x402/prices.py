"""The price of a paid URL, from commerce (`commerce.x402.prices.resolve`), kept `ttl` seconds per replica.

Kept by the concrete path: the price commerce found for it (its own, or its route template's).

A price changed with `one x402 price set` is sold at the new price within `ONE_GATEWAY_X402_PRICE_TTL`
seconds (default 5) at every replica; an unpriced resource (404 `price_not_found`) is remembered as long,
so unknown URLs cost commerce one lookup per TTL. Only answers are kept, not outages.
"""

import time
from collections import OrderedDict
from typing import Any

from shared.contracts.commerce.x402 import X402_PRICE_RESOLVE, Price, PriceNotFound
from shared.kernel.envelope import Protocol
from shared.kernel.errors import OneError

SIZE = 10_000


class PriceCache:
    def __init__(self, bus: Any, ttl: float) -> None:
        self.bus = bus
        self.ttl = ttl
        self._kept: OrderedDict[tuple[str, str], tuple[float, Price | PriceNotFound]] = OrderedDict()

    async def get(self, org: str, resource: str, route: str | None = None) -> Price:
        """The price of `resource` (a concrete path), else of `route` (the template it matched)."""
        key = (org, resource)
        kept = self._kept.get(key)
        if kept is not None and kept[0] > time.monotonic():
            answer = kept[1]
        else:
            try:
                asked = {"org": org, "resource": resource, "route": route if route != resource else None}
                answer = await self.bus.request(X402_PRICE_RESOLVE, asked, protocol=Protocol.X402)
            except PriceNotFound as missing:
                answer = missing
            self._remember(key, answer)
        if isinstance(answer, PriceNotFound):  # a fresh error each time: a kept one would grow its traceback
            raise OneError.from_payload(answer.to_payload())
        return answer

    def _remember(self, key: tuple[str, str], answer: Price | PriceNotFound) -> None:
        if self.ttl <= 0:
            return
        self._kept[key] = (time.monotonic() + self.ttl, answer)
        self._kept.move_to_end(key)
        while len(self._kept) > SIZE:
            self._kept.popitem(last=False)
