"""The per-replica tally (`AgentsState.tally`): one writer per key at a time, every count written exactly once.

It is what keeps concurrent A2A messages of one caller from queueing on their tally row's lock, each holding a
pooled connection: the messages that arrive while a write runs are counted together in the next write.
"""

import asyncio

from services.agents.state import AgentsState


async def test_what_arrives_during_a_write_goes_in_the_next_one_and_nothing_is_lost() -> None:
    state = AgentsState(providers=None)  # type: ignore[arg-type]  # no run here: only the tally
    writes: dict[str, list[int]] = {"a": [], "b": []}
    writing: set[str] = set()
    release = asyncio.Event()

    def writer(key: str):
        async def write(amount: int) -> None:
            assert key not in writing, "two writers of one key at once"
            writing.add(key)
            writes[key].append(amount)
            if len(writes[key]) == 1:
                await release.wait()
            await asyncio.sleep(0)
            writing.discard(key)
        return write

    state.tally("a", 1, writer("a"), name="tally-a")
    await asyncio.sleep(0.01)  # the first write of "a" runs, and waits
    for _ in range(7):
        state.tally("a", 1, writer("a"), name="tally-a")
    state.tally("b", 2, writer("b"), name="tally-b")  # another key is not held up by "a"
    await asyncio.sleep(0.01)
    assert writes == {"a": [1], "b": [2]}
    release.set()
    await asyncio.gather(*list(state.tasks))
    assert writes == {"a": [1, 7], "b": [2]} and state.tallies == {}

    state.tally("a", 3, writer("a"), name="tally-a")  # after the writer ended: a new one
    await asyncio.gather(*list(state.tasks))
    assert writes["a"] == [1, 7, 3] and state.tallies == {}
    await state.http.aclose()


async def test_a_writer_that_is_stopped_leaves_the_key_free() -> None:
    state = AgentsState(providers=None)  # type: ignore[arg-type]
    started = asyncio.Event()

    async def stuck(amount: int) -> None:
        started.set()
        await asyncio.Event().wait()

    state.tally("k", 1, stuck, name="tally-k")
    await started.wait()
    for task in list(state.tasks):
        task.cancel()
    await asyncio.gather(*list(state.tasks), return_exceptions=True)
    assert state.tallies == {}
    written: list[int] = []

    async def write(amount: int) -> None:
        written.append(amount)

    state.tally("k", 2, write, name="tally-k")
    await asyncio.gather(*list(state.tasks))
    assert written == [2]
    await state.http.aclose()


async def test_a_gathering_writer_counts_messages_one_after_the_other_in_one_write() -> None:
    state = AgentsState(providers=None)  # type: ignore[arg-type]
    written: list[int] = []

    async def write(amount: int) -> None:
        written.append(amount)

    for _ in range(3):
        state.tally("k", 1, write, name="tally-k", gather=0.05)
        await asyncio.sleep(0.005)  # each added after the one before was handed to the writer's task
    await asyncio.gather(*list(state.tasks))
    assert written == [3] and state.tallies == {}
    await state.http.aclose()
