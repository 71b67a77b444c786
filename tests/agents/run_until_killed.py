"""An agents replica that starts one run and keeps working on it until the test kills the process.

`python -m tests.agents.run_until_killed <database_url> <nats_url> <model_url> <auth json> <agent slug>` prints
`run <run id>` once the run started; the scripted model then holds the run's second completion, and the
test SIGKILLs this process mid-loop, with the run's lease held (5 s, renewed while the process lives).
"""

import asyncio
import json
import sys
from uuid import UUID

from pydantic import SecretStr

from services.agents import durability, service_runs
from services.agents.settings import AgentsSettings
from services.agents.tools_access import AGENT_GRANTS
from shared import __version__
from shared.contracts.agents import ChatRequest
from shared.kernel.envelope import Envelope
from shared.runtime.context import WorkContext
from shared.runtime.handlers import ServiceRouter
from shared.runtime.service import ServiceDefinition, ServiceRuntime


async def main(database_url: str, nats_url: str, model_url: str, auth: str, slug: str) -> None:
    settings = AgentsSettings(database_url=database_url, nats_url=nats_url, agents_openai_base_url=model_url,
                              agents_openai_api_key=SecretStr("test"), agents_lease_seconds=5.0,
                              agents_sweep_interval=3600)
    definition = ServiceDefinition("agents", __version__, ServiceRouter("agents"), settings=AgentsSettings,
                                   grants=AGENT_GRANTS, on_start=[durability.start])
    runtime = ServiceRuntime(definition, settings)
    await runtime.start(migrate=False)
    who = json.loads(auth)
    envelope = Envelope(type="agents.chat", org_id=UUID(who["org_id"]), actor_id=UUID(who["actor_id"]),
                        role=who["role"], permissions=tuple(who["permissions"]))
    reply = await service_runs.chat(WorkContext(envelope, None, runtime), ChatRequest(slug=slug, message="go",
                                                                                      wait=False))
    print("run", reply.run.id, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
