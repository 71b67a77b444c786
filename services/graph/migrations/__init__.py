"""Schema `graph` migrations, applied in order by shared.migrate."""
