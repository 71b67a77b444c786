"""One `one up`-style stack (tests/deploy/embedded_stack.py) shared by this package's kill tests: starting it takes
half a minute, each kill a few seconds. The chaos suite (test_chaos_stack.py) starts its own."""

from collections.abc import AsyncIterator

import pytest

from shared.kernel.ids import uuid7
from shared.tools.sdk import One
from tests.deploy.embedded_stack import Stack


@pytest.fixture(scope="package")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """Knowledge embeds by feature hashing here: the local model's load would make each knowledge (re)start take a
    minute on a loaded machine, and no test here embeds anything."""
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("ONE_KNOWLEDGE_EMBEDDER", "hashing")
        running = Stack(tmp_path_factory.mktemp("kill-stack") / "data")
        try:
            yield await running.start()
        finally:
            await running.stop()


@pytest.fixture(scope="package")
async def owner_key(stack: Stack) -> str:
    """The owner key of an org of its own on the shared stack."""
    async with await One.connect(nats_url=stack.bus_url, key=stack.platform_key, name="kill-tests") as platform:
        created = await platform.orgs.create("Kill tests", f"kill-{uuid7().hex[:8]}",
                                             owner={"email": "kill@one.test", "display_name": "Kill"})
    return created.owner_key
