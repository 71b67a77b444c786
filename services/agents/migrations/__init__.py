"""Schema `agents` migrations, applied in order by shared.migrate."""
