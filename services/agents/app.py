"""The agents service's subscribers; each domain's handlers live on their own router, joined here."""

from services.agents import durability
from services.agents.app_a2a import a2a_router
from services.agents.app_agents import agents_router
from services.agents.app_external import external_router
from services.agents.app_jobs import jobs_router, start_workers, stop_workers
from services.agents.app_plugins import plugins_router
from services.agents.app_runs import runs_router
from services.agents.app_scheduling import scheduling_router
from services.agents.job_handlers import GRANTS as JOB_GRANTS
from services.agents.settings import AgentsSettings
from services.agents.tools_access import AGENT_GRANTS
from shared import __version__
from shared.contracts.keys import KeysRotated, keys_rotate_spec
from shared.runtime import keyring
from shared.runtime.handlers import ServiceRouter
from shared.runtime.service import ServiceDefinition

router = ServiceRouter("agents")
router.include(agents_router)
router.include(runs_router)
router.include(jobs_router)
router.include(a2a_router)
router.include(external_router)
router.include(plugins_router)
router.include(scheduling_router)
router.include(keyring.rotation_router("agents", keys_rotate_spec("agents"), KeysRotated))
definition = ServiceDefinition(name="agents", version=__version__, router=router, settings=AgentsSettings,
                               grants=(*JOB_GRANTS, *AGENT_GRANTS), on_start=[durability.start, start_workers],
                               on_stop=[stop_workers, durability.stop, keyring.close])
