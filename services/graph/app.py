"""The graph service's subscribers; its domain handlers register on `router`."""

from shared import __version__
from shared.handlers import ServiceRouter
from shared.service import ServiceDefinition

router = ServiceRouter("graph")
definition = ServiceDefinition(name="graph", version=__version__, router=router)
