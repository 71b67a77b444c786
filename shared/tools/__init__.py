"""The tools: the `one` CLI, the Python SDK, the embedded stack. The only layer that finds services, by name."""
