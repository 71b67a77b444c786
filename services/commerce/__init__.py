"""Commerce service: the money. ACP checkout sessions and orders, x402 prices and payments, AP2 mandates, PSPs."""
