"""The eventlog service's subscribers; its domain handlers register on `router`."""

from shared import __version__
from shared.handlers import ServiceRouter
from shared.service import ServiceDefinition

router = ServiceRouter("eventlog")
definition = ServiceDefinition(name="eventlog", version=__version__, router=router)
