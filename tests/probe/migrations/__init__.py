"""Schema `probe` migrations."""
