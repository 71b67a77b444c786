"""Schema `agents` migrations, applied in order by shared.runtime.migrate."""
