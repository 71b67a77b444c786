"""The gateway service's subscribers; its domain handlers register on `router`.

The gateway is stateless and owns no schema (DESIGN, "Data"): what it needs to remember
belongs to the service behind it.
"""

from shared import __version__
from shared.runtime.handlers import ServiceRouter
from shared.runtime.service import ServiceDefinition

router = ServiceRouter("gateway")
definition = ServiceDefinition(name="gateway", version=__version__, router=router, owns_schema=False)
