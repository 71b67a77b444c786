"""A tiny service used only by tests and benchmarks to exercise the shared layer.

It has what every real service has (router, schema, migration, RLS table,
outbox) and nothing domain-specific, so foundation tests don't depend on the
features of the six services.
"""
