"""Background work of each graph replica: the quota settler and the identity consumer.

`runtime.state` holds them while the replica runs (`GraphState`); both are system work, done
as the graph's own identity (`ServiceDefinition.grants` in app.py) through `runtime.background`.
"""

from dataclasses import dataclass

from services.graph import identity
from services.graph.quota import Settler
from shared.runtime.service import ServiceRuntime


@dataclass
class GraphState:
    settler: Settler
    identity: identity.IdentityConsumer | None


async def start(runtime: ServiceRuntime) -> None:
    settler = Settler(runtime)
    consumer = identity.IdentityConsumer(runtime) if runtime.settings.graph_identity_sync else None
    runtime.state = GraphState(settler, consumer)
    settler.start()
    if consumer is not None:
        await consumer.start(runtime.broker.connection)


async def stop(runtime: ServiceRuntime) -> None:
    graph: GraphState | None = runtime.state
    if graph is None:
        return
    runtime.state = None
    if graph.identity is not None:
        await graph.identity.stop()
    await graph.settler.stop()
