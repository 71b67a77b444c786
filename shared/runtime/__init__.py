"""The runtime: how a process of the platform runs: bus, handlers, context, database, outbox, consumer, tracing, metrics."""
