"""The six services; each has the same file roles (see DESIGN.md)."""
