"""The agents service's subscribers; its domain handlers register on `router`."""

from shared import __version__
from shared.runtime.handlers import ServiceRouter
from shared.runtime.service import ServiceDefinition

router = ServiceRouter("agents")
definition = ServiceDefinition(name="agents", version=__version__, router=router)
