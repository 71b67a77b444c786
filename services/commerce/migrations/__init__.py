"""Schema `commerce` migrations, applied in order by shared.runtime.migrate."""
