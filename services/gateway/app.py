"""The gateway as a bus service: no handlers of its own but health, and its HTTP server as start/stop hooks.

The gateway is stateless and owns no schema (DESIGN, "Data"): what it needs to remember
belongs to the service behind it. `one serve gateway` (and so `one up`) runs this runtime,
whose `on_start` hook serves the HTTP app (`services/gateway/server.py`) on the same loop.
"""

from services.gateway.server import start_http, stop_http
from services.gateway.settings import GatewaySettings
from shared import __version__
from shared.runtime.handlers import ServiceRouter
from shared.runtime.service import ServiceDefinition

router = ServiceRouter("gateway")
definition = ServiceDefinition(
    name="gateway",
    version=__version__,
    router=router,
    owns_schema=False,
    settings=GatewaySettings,
    on_start=[start_http],
    on_stop=[stop_http],
)
