"""Schema `knowledge` migrations, applied in order by shared.runtime.migrate."""
