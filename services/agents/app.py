"""The agents service's subscribers; each domain's handlers live on their own router, joined here."""

from services.agents.settings import AgentsSettings
from shared import __version__
from shared.runtime.handlers import ServiceRouter
from shared.runtime.service import ServiceDefinition

router = ServiceRouter("agents")
definition = ServiceDefinition(name="agents", version=__version__, router=router, settings=AgentsSettings)
