"""Schema `eventlog` migrations, applied in order by shared.runtime.migrate."""
