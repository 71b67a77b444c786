"""Schema `graph` migrations, applied in order by shared.runtime.migrate."""
