"""What every paid route shares: the seller in the path, the 402 it documents, and `sell`.

`sell` finds the price by the route FastAPI matched: its template under `/x402/{org}/` (`v1/things/{id}`)
and the concrete path the request names (`v1/things/<id>`, built from the route's validated arguments,
so an id is in its canonical lower case). Commerce answers the path's own price, else the template's
(`commerce.x402.prices.resolve`); a route the org priced neither way is 404 `price_not_found`.
"""

import re
from typing import Annotated, Any

from fastapi import Path, Request
from starlette.responses import Response

from services.gateway.problems import Problem, error_responses
from services.gateway.x402.paywall import Paywall
from services.gateway.x402.resources import Sold
from shared.contracts.commerce.x402 import OrgRef

PREFIX = "/x402/{org}"
PAID = {402: {"model": Problem, "description": "Payment required or refused: base64 `PAYMENT-REQUIRED` says how "
              "to pay, the problem's `detail` why not."}, **error_responses(404, 422, 503)}
Org = Annotated[OrgRef, Path(description="The selling org's slug (or id).")]
_PARAMETER = re.compile(r"{(\w+)}")


def matched_template(request: Request) -> str:
    """The matched route's path template under the paid prefix (`v1/things/{id}`)."""
    return request.scope["route"].path_format.removeprefix(PREFIX + "/")


async def sell(request: Request, org: str, sold: Sold, **args: Any) -> Response:
    """Sell the matched route's resource: its price (the path's, else the route's), then x402 (paywall.py)."""
    template = matched_template(request)
    resource = _PARAMETER.sub(lambda found: str(args[found.group(1)]), template)
    price = await request.app.state.x402.prices.get(org, resource, template)
    return await Paywall(request, price, sold, args).sell()
