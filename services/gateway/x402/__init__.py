"""The x402 resource server at the gateway: resources an org prices, sold per request to whoever pays.

`/x402/{org}/...` (routes.py) needs no API key: the payer is a wallet. The price comes from commerce
(prices.py), the payment is checked and settled by the official x402 resource server classes over a
facilitator on the bus (facilitator.py, paywall.py), and the paid request runs with an auth context
that can do that one thing in the seller's org (resources.py). README "x402" says why that is safe.
"""
