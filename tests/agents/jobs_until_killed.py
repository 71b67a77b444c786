"""An agents replica whose one worker holds the first job of a queue until the process is killed.

`python -m tests.agents.jobs_until_killed <database_url> <nats_url> <queue>` prints `running <job id>`
once its handler runs; the test then SIGKILLs it, mid-job, with the lease held.
"""

import asyncio
import sys

from services.agents.models_jobs import JobRow
from services.agents.settings import AgentsSettings
from services.agents.worker import JobWorker, WorkerPolicy
from shared import __version__
from shared.runtime.context import WorkContext
from shared.runtime.handlers import ServiceRouter
from shared.runtime.service import ServiceDefinition, ServiceRuntime


async def hold(_: WorkContext, job: JobRow) -> None:
    print("running", job.id, flush=True)
    await asyncio.sleep(3600)


async def main(database_url: str, nats_url: str, queue: str) -> None:
    async def start(runtime: ServiceRuntime) -> None:
        await JobWorker(runtime, {"notification.send": hold}, WorkerPolicy(queues=(queue,), slots=1, lease=1.0)).start()

    definition = ServiceDefinition("agents", __version__, ServiceRouter("agents"), settings=AgentsSettings,
                                   on_start=[start])
    await ServiceRuntime(definition, AgentsSettings(database_url=database_url, nats_url=nats_url)).start(migrate=False)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
