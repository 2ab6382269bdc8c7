"""What import-linter cannot check: worker.py is a top-level module, not a package, so it is never a
contract's source. The composition root may import everything below it, and nothing above it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ABOVE_THE_WORKER = ("cli", "bench", "tests")


def imported_modules(source: str) -> set[str]:
    """Every module a source imports, at module level or inside functions and ``TYPE_CHECKING`` blocks."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def above_the_worker(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in ABOVE_THE_WORKER)


def test_worker_imports_neither_cli_nor_bench() -> None:
    """worker.py wires the layers below it; the command line and the benchmarks sit above it."""
    modules = imported_modules((ROOT / "worker.py").read_text(encoding="utf-8"))
    assert {"sync.cycle", "store"} <= modules  # the check reads the real file
    assert above_the_worker(modules) == []


@pytest.mark.parametrize(
    "source",
    ["import cli", "from cli.demo import run_demo", "def f():\n    import bench.harness\n"],
)
def test_the_check_sees_every_form_of_import(source: str) -> None:
    """A module-level, a from- and a function-local import above the worker are all found."""
    assert above_the_worker(imported_modules(source)) != []
