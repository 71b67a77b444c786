"""The joints between layers and services hold, and the check that says so can fail.

`make test` runs `lint-imports` on the tree; these tests run the same contracts
(pyproject's `[tool.importlinter]`) on a copy of the tree with one forbidden import
added, so a contract that silently stopped checking anything would be caught.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT), "--no-cache"], cwd=tree, capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the code and its contracts (no tests, no data)."""
    copy = tmp_path_factory.mktemp("tree")
    for package in ("shared", "services"):
        shutil.copytree(ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


def test_the_tree_keeps_every_contract(tree: Path) -> None:
    result = lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "statement", "contract"),
    [
        ("services.knowledge.search", "from services.graph import models", "services never import each other"),
        ("shared.kernel.envelope", "import services.graph.app", "shared/ imports no service"),
        ("shared.runtime.db", "from shared.tools import stack", "imports only downward"),
        ("shared.contracts.graph.schemas", "from shared.runtime import client", "contracts are pydantic and the kernel"),
        ("services.graph.service", "from shared.tools import cli", "not the tools"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(tree: Path, module: str, statement: str, contract: str) -> None:
    path = tree / (module.replace(".", "/") + ".py")
    original = path.read_text()
    path.write_text(f"{original}\n{statement}\n")
    try:
        result = lint(tree)
    finally:
        path.write_text(original)
    assert result.returncode != 0
    assert contract in result.stdout and "BROKEN" in result.stdout, result.stdout
