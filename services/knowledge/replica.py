"""Starting and stopping one knowledge replica: its state on the runtime, the model loaded, the
search pool open, the ingestion workers and (with `knowledge_auto_ingest`) the graph-event trigger.
"""

import logging

from services.knowledge import jobs, state
from shared.kernel.errors import Unavailable
from shared.runtime.service import ServiceRuntime

log = logging.getLogger(__name__)


async def start(runtime: ServiceRuntime) -> None:
    knowledge = runtime.state = state.create(runtime.settings)
    await knowledge.search_db.start()
    try:
        await knowledge.embedder.warm()  # load the model now, not within the first request's timeout
    except Unavailable as error:
        log.warning("the embedding provider did not answer at start (%s); requests will retry it", error)
    knowledge.workers = jobs.Workers(runtime)
    knowledge.workers.start()
    if runtime.settings.knowledge_auto_ingest:
        knowledge.trigger = jobs.Trigger(runtime, knowledge.workers)
        await knowledge.trigger.start(runtime.broker.connection)


async def stop(runtime: ServiceRuntime) -> None:
    knowledge: state.KnowledgeState | None = runtime.state
    if knowledge is None:
        return
    runtime.state = None
    if knowledge.trigger is not None:
        await knowledge.trigger.stop()
    if knowledge.workers is not None:
        await knowledge.workers.stop()
    await knowledge.search_db.close()
    await knowledge.embedder.close()
