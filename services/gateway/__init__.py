"""Gateway: the HTTP edge and the A2A / ACP / AP2 / x402 protocol adapters."""
