"""ACP at the edge: checkout routes, Delegate Payment, idempotency, ACP error bodies."""
