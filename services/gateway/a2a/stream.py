"""A task as an A2A event stream: its current state, then its run's steps as they come, until it ends.

The run's steps are followed with the AG-UI stream's follower (routes_agui.follow: stored, then live,
no gap, no repeat), reading stored steps through `a2a.task.steps` (a partner's key reads no runs). Text
deltas become chunks of the `answer` artifact (`append` after the first); when the run ends the task is
read once more: its whole artifact (replacing the chunks, `lastChunk`), then its final status. A run that stops to
wait for its caller ends its steps too (`run_finished`, status `waiting`): the stream ends with the task's
input-required or auth-required status, unless the task is working again by then (the caller answered): then
the stream follows it on, after that step.
"""

from collections.abc import AsyncIterator
from typing import Any

from a2a.types.a2a_pb2 import Artifact, Part, Task, TaskArtifactUpdateEvent, TaskState, TaskStatusUpdateEvent
from google.protobuf.json_format import ParseDict

from services.gateway.a2a.auth import A2aCall
from services.gateway.routes_agui import PAGE, TERMINAL, StepFeed, follow
from shared.contracts.a2a import A2A_GET, A2A_STEPS, A2aTask
from shared.contracts.agents import Run, RunSteps, StepKind
from shared.kernel.envelope import Protocol
from shared.runtime.client import BusClient


def task_of(answer: A2aTask) -> Task:
    return ParseDict(answer.task, Task(), ignore_unknown_fields=True)


async def task_events(bus: BusClient, call: A2aCall, start: A2aTask, feed: StepFeed) -> AsyncIterator[Any]:
    """The task now, then its updates until it ends; `feed` (opened before the task started, or before it was read)
    is closed at the end."""
    try:
        task = task_of(start)
        yield task
        if start.final:
            return
        ids = {"task_id": task.id, "context_id": task.context_id}

        async def read(after: int, limit: int) -> RunSteps:
            return await bus.request(A2A_STEPS, {"agent": call.agent, "id": task.id, "after_seq": after,
                                                 "limit": limit}, call.auth, protocol=Protocol.A2A)

        first = await read(0, PAGE)
        streamed, after, stored = False, 0, first.steps
        while True:
            ended: Any = None
            async for item in follow(bus, call.auth, first.run, feed, after=after, stored=stored, read=read):
                if item is None:
                    continue
                if isinstance(item, Run) or item.kind in TERMINAL:
                    ended = item
                    break
                if item.kind == StepKind.TEXT_DELTA and item.text:
                    chunk = Artifact(artifact_id=f"{first.run.id}-answer", name="answer", parts=[Part(text=item.text)])
                    yield TaskArtifactUpdateEvent(**ids, artifact=chunk, append=streamed, last_chunk=False)
                    streamed = True
            final = task_of(await bus.request(A2A_GET, {"agent": call.agent, "id": task.id}, call.auth,
                                                 protocol=Protocol.A2A))
            if final.status.state == TaskState.TASK_STATE_WORKING and ended is not None and not isinstance(ended, Run):
                after, stored = ended.seq, None  # it waited, and its caller answered meanwhile: follow on
                continue
            for artifact in final.artifacts:
                yield TaskArtifactUpdateEvent(**ids, artifact=artifact, append=False, last_chunk=True)
            yield TaskStatusUpdateEvent(**ids, status=final.status)
            return
    finally:
        await feed.close()
