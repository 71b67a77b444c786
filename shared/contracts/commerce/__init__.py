"""The commerce service's public face: checkout (ACP), prices and payments (x402), mandates (AP2), products.

Each protocol's messages live in their own module here; import from the module.
"""
