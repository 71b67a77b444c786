"""Each service's public face: message specs, payload and result models, error codes. Imports only pydantic and the kernel."""
