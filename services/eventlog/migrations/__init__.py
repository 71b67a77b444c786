"""Schema `eventlog` migrations, applied in order by shared.migrate."""
