"""Event log service: the append-only record of everything that happened."""
