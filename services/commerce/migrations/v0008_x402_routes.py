"""x402 prices on any allow-listed route (`shared.contracts.commerce.x402.PRICEABLE_ROUTES`), not three kinds.

- `resource` keeps its meaning (the path sold under `/x402/{org}/`) and may now be a route template
  (`v1/things/{id}`: every thing of the org at one price) besides a concrete path; the key is unchanged
  (org, resource): a route has one method, so the path names the route.
- `method`: the route's method, as the allow-list says (the three earlier kinds' are filled in here).
- `mime_type`: what the resource answers, advertised in the 402's `resource.mimeType`.
"""

STATEMENTS = [
    ("ALTER TABLE commerce.x402_prices ADD COLUMN method text NOT NULL DEFAULT 'GET' "
     "CHECK (method IN ('GET', 'POST'))"),
    ("UPDATE commerce.x402_prices SET method = 'POST' "
     "WHERE resource = 'knowledge/search' OR resource LIKE 'agents/%/chat'"),
    "ALTER TABLE commerce.x402_prices ALTER COLUMN method DROP DEFAULT",
    "ALTER TABLE commerce.x402_prices ADD COLUMN mime_type text NOT NULL DEFAULT 'application/json'",
]
