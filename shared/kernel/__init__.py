"""The kernel: what a message is and means. Imports nothing of the platform above it."""
