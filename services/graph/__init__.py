"""Graph service: things and connections, the typed org-scoped graph."""
