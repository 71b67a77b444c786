"""What every service imports: envelope, subjects, bus, db, outbox, tracing, settings, errors, ontology."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("one-on-a-bus")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"
