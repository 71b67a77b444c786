"""At 80 columns against the real stack: `status`, `events query` and `knowledge search` keep every id whole
(copyable), `--json` parses, and a one-request command (`one whoami`) loads no model, service or database code."""

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.cli.conftest import Cli, one_line_error

pytestmark = pytest.mark.timeout(900)  # each command is a process of its own; the machine is shared


WHOAMI_NEVER_LOADS = ("pydantic_settings", "shared.kernel.settings", "opentelemetry.sdk.trace",
                      "opentelemetry.sdk.resources", "psutil", "rich", "shared.tools.stack", "shared.tools.embedded",
                      "faststream", "httpx")
"""What a one-request command does without: each was a measurable part of `one whoami`'s start (issue 18)."""
WHOAMI_ASKS_WITHOUT = ("asyncio", "nats", "aiohttp.", "importlib.metadata", "logging", "shared.runtime",
                       "shared.contracts.tenancy.messages", "shared.contracts.tenancy.records")
"""`one whoami` asks with one blocking request (`sdk/blocking_bus.py`): no event loop, no nats-py (nor the aiohttp
it imports: `aiohttp` itself is a stand-in), no pydantic plugin lookup, and of tenancy's contract only the key
verification (`verify.py`)."""


def whole(value: str, text: str) -> bool:
    """`value` appears on one line, not cut or wrapped."""
    return re.search(rf"(^|\s){re.escape(value)}(\s|$)", text, re.MULTILINE) is not None


def narrow(text: str) -> None:
    assert all(len(line) <= 80 for line in text.splitlines()), text


async def test_status_fits_80_columns(one: Cli) -> None:
    table = (await one("status")).ok()
    narrow(table)
    for service in ("tenancy", "graph", "eventlog", "knowledge", "agents", "gateway"):
        assert re.search(rf"^{service}\s+yes\s", table, re.MULTILINE), table
    reports = (await one("status", "--json")).json()
    assert reports["graph"]["healthy"] is True


async def test_events_query_keeps_ids_whole(one: Cli) -> None:
    target = str(uuid.uuid4())
    published = await one("publish", "--type", "content_viewed", "--target", target, "--target-type", "blog_post",
                          "--meta", '{"note": "' + "long metadata " * 10 + '"}')
    assert published.code == 0, published
    for _ in range(50):  # the log is eventually consistent: ingested within moments
        page = (await one("events", "query", "--type", "content_viewed", "--json")).out
        if target in page:
            break
    table = (await one("events", "query", "--type", "content_viewed")).ok()
    narrow(table)
    assert whole(target, table) and "content_event" in table, table  # the granular type, canonical
    one_line_error(await one("events", "query", "--since", "yesterday"), 2, "since")


async def test_knowledge_search_keeps_thing_ids_whole(one: Cli) -> None:
    text = "Bees cluster together in winter and shiver their flight muscles to keep the hive warm."
    post = (await one("things", "create", "blog_post", "Wintering bees", "-p", json.dumps({"content": text}),
                      "--json")).json()["id"]
    assert (await one("knowledge", "ingest", post)).code == 0
    table = (await one("knowledge", "search", "how do hives survive winter", "-k", "3")).ok()
    narrow(table)
    assert whole(post, table), table
    hits = (await one("knowledge", "search", "how do hives survive winter", "--json")).json()["hits"]
    assert hits[0]["item"]["source_thing_id"] == post


def test_a_bus_client_imports_none_of_what_whoami_never_loads() -> None:
    """Without the stack: the CLI, the SDK's bus transport and its settings leave those modules out."""
    program = ("import sys; import shared.tools.cli, shared.tools.sdk.bus, shared.tools.sdk.connect;"
               "shared.tools.sdk.connect.ClientSettings.from_environment(); print('\\n'.join(sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True).stdout.split()
    assert not [m for m in loaded if m.startswith(WHOAMI_NEVER_LOADS)], sorted(loaded)


async def test_whoami_loads_no_model_service_or_database_code(one: Cli, tmp_path: Path) -> None:
    modules = tmp_path / "modules.txt"
    program = (f"import atexit, sys; atexit.register(lambda: open({str(modules)!r}, 'w').write('\\n'.join(sys.modules)));"
               "sys.argv = ['one', 'whoami']; from shared.tools.cli import main; main()")
    ran = await one("-c", program, _python=True)
    assert ran.code == 0 and "org" in ran.out, ran
    loaded = set(modules.read_text().split())
    heavy = {m for m in loaded if m.split(".")[0] in ("torch", "sentence_transformers", "transformers", "services",
                                                      "sqlalchemy", "asyncpg", "fastapi", "uvicorn")}
    assert not heavy, sorted(heavy)
    slow_to_start = {m for m in loaded if m.startswith(WHOAMI_NEVER_LOADS)}  # each was a part of its start time
    assert not slow_to_start, sorted(slow_to_start)
    not_needed = {m for m in loaded if m.split(".")[0] in WHOAMI_ASKS_WITHOUT or m.startswith(WHOAMI_ASKS_WITHOUT)}
    assert not not_needed, sorted(not_needed)


async def test_a_bus_command_imports_aiohttp_only_if_it_uses_it(one: Cli, tmp_path: Path) -> None:
    """nats-py imports aiohttp (for websockets): `one` hands it a stand-in that imports it on first use."""
    modules = tmp_path / "modules.txt"
    program = (f"import atexit, sys; atexit.register(lambda: open({str(modules)!r}, 'w').write("
               "type(sys.modules['aiohttp']).__name__ + ' ' + ' '.join(sys.modules)));"
               "sys.argv = ['one', 'roles', 'list', '--json']; from shared.tools.cli import main; main()")
    ran = await one("-c", program, _python=True)
    assert ran.code == 0 and "org_owner" in ran.out, ran
    stand_in, *loaded = modules.read_text().split()
    assert stand_in == "_ImportedOnFirstUse" and "nats.aio.transport" in loaded
    assert not [m for m in loaded if m.startswith("aiohttp.")], loaded
