"""Schema `gateway` migrations, applied in order by shared.migrate."""
