"""Schema `tenancy` migrations, applied in order by shared.runtime.migrate."""
