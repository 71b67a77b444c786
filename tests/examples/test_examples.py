"""Every `examples/*/main.py` and the README's Python program, run as written against the real stack.

Each runs in a subprocess as a user would run it: the environment points at the test stack, over
the bus (`ONE_NATS_URL` + `ONE_API_KEY`) and over HTTP (`ONE_URL` + `ONE_API_KEY`, no NATS at all).
"""

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from shared.kernel.settings import Settings
from shared.runtime.client import BusClient
from tests.tenancy.conftest import Account, create_org  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p.parent.name for p in (ROOT / "examples").glob("*/main.py"))

pytestmark = pytest.mark.usefixtures("services")


@pytest.fixture(params=["bus", "http"])
async def user_env(request: pytest.FixtureRequest, bus: BusClient, platform: Account, settings: Settings,  # noqa: F811
                   gateway: str, tmp_path: Path) -> dict[str, str]:  # noqa: F811
    """A fresh org's owner: the key, and where the platform is; nothing else of the test process."""
    owner = await create_org(bus, platform)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONE_", "NATS_", "DATABASE_"))}
    env |= {"ONE_API_KEY": owner.key, "ONE_DATA_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    env |= {"ONE_NATS_URL": settings.nats_url or ""} if request.param == "bus" else {"ONE_URL": gateway}
    return env


async def run(env: dict[str, str], script: Path) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(subprocess.run, [sys.executable, str(script)], capture_output=True, text=True,
                                   env=env, cwd=ROOT, timeout=600)


def test_there_are_examples() -> None:
    assert {"events", "graph", "knowledge", "agents"} <= set(EXAMPLES)
    for name in EXAMPLES:
        assert (ROOT / "examples" / name / "README.md").exists(), f"examples/{name} has no README.md"


@pytest.mark.parametrize("name", EXAMPLES)
async def test_example_runs(name: str, user_env: dict[str, str]) -> None:
    done = await run(user_env, ROOT / "examples" / name / "main.py")
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert done.stdout.strip()


def readme_program() -> str:
    """The README's Python program: the block after the line that says it runs as written."""
    text = (ROOT / "README.md").read_text()
    match = re.search(r"runs as written[^\n]*\n+```python\n(.*?)```", text, re.S)
    assert match, "README.md has no Python program introduced with 'runs as written'"
    return match.group(1)


async def test_the_readme_program_runs_as_written(user_env: dict[str, str], tmp_path: Path) -> None:
    script = tmp_path / "readme_program.py"
    script.write_text(readme_program())
    done = await run(user_env, script)
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert "acts as" in done.stdout
