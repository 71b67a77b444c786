"""`start_eagerly`: a coroutine runs at once, and only one that waits gets a task; `await` semantics kept."""

import asyncio
import contextvars

import pytest

from shared.runtime.eager import start_eagerly
from shared.runtime.handlers import ServiceRouter
from tests.probe.app import ECHO

seen: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="unset")


async def test_a_coroutine_that_never_waits_finishes_without_a_task() -> None:
    done = []

    async def answer() -> None:
        done.append(asyncio.current_task())

    assert start_eagerly(answer()) is None
    assert done == [asyncio.current_task()]


async def test_one_that_waits_finishes_in_a_task_with_its_own_context() -> None:
    gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    steps = []

    async def wait_then_answer() -> None:
        seen.set("mine")
        steps.append("started")
        steps.append(await gate)
        steps.append(seen.get())

    task = start_eagerly(wait_then_answer())
    assert task is not None and steps == ["started"]
    assert seen.get() == "unset"  # what the coroutine set stays in its own context
    gate.set_result("resumed")
    await task
    assert steps == ["started", "resumed", "mine"]


async def test_several_may_wait_on_the_same_future() -> None:
    """A future shared by waiters (a slot being freed, a load in progress) wakes them all."""
    gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    woken = []

    async def wait(n: int) -> None:
        woken.append((n, await gate))

    tasks = [start_eagerly(wait(n)) for n in range(3)]
    gate.set_result("open")
    await asyncio.gather(*tasks)
    assert sorted(woken) == [(0, "open"), (1, "open"), (2, "open")]


async def test_errors_after_resuming_end_the_task_with_that_error() -> None:
    async def wait_then_fail() -> None:
        await asyncio.sleep(0)
        raise LookupError("late")

    task = start_eagerly(wait_then_fail())
    with pytest.raises(LookupError, match="late"):
        await task


async def test_an_error_of_the_awaited_future_is_raised_inside_the_coroutine() -> None:
    gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    caught = []

    async def wait() -> None:
        try:
            await gate
        except KeyError as error:
            caught.append(error)

    task = start_eagerly(wait())
    gate.set_exception(KeyError("x"))
    await task
    assert len(caught) == 1


async def test_cancelling_the_task_cancels_the_coroutine_where_it_waits() -> None:
    cleaned_up = []

    async def wait_forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned_up.append(True)

    task = start_eagerly(wait_forever())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned_up == [True]


def test_a_transactional_handler_cannot_be_eager() -> None:
    with pytest.raises(ValueError, match="cannot be eager"):
        ServiceRouter("unit").handler(ECHO, eager=True)


def test_a_router_includes_another_routers_handlers_once() -> None:
    main, jobs = ServiceRouter("unit"), ServiceRouter("unit")
    jobs.handler(ECHO, transactional=False, eager=True)(_echo_handler_for_include)
    main.include(jobs)
    assert main.handlers[ECHO.type][0] is _echo_handler_for_include and ECHO.type in main.eager
    assert main.specs_by_subject[ECHO.subject][ECHO.type] is ECHO
    with pytest.raises(ValueError, match="already has a handler"):
        main.include(jobs)
    with pytest.raises(ValueError, match="cannot include"):
        main.include(ServiceRouter("other"))


async def _echo_handler_for_include(ctx, payload):  # noqa: ANN001, ANN202
    return payload
