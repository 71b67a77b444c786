"""Schema `gateway` migrations, applied in order by shared.runtime.migrate."""
