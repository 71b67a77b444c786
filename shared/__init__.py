"""What every service imports: envelope, subjects, bus, db, outbox, tracing, settings, errors, ontology."""

from typing import Any


def __getattr__(name: str) -> Any:
    """`shared.__version__`, read from the installed metadata when first asked for (`one --version`), not by every
    import of `shared`: `one whoami` never pays for the lookup."""
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("one-on-a-bus")
    except PackageNotFoundError:  # running from a source tree that was not installed
        found = "0.0.0"
    globals()["__version__"] = found
    return found
