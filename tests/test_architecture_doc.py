"""docs/architecture.md is a claim about the code: every path and dotted name it cites in backticks exists.

A backticked ``dir/file.py`` (or ``dir/``) must be a file or folder of the repository; a backticked name
rooted in one of the product's packages (``sync.cycle.run_cycle``, ``worker.make_cycle(...)``,
``crm_sandbox.dataset.generate``) must import and resolve, attribute by attribute. A module renamed or a
function removed then fails here until the page says what is true.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
PACKAGES = ("policies", "connectors", "sync", "store", "config", "report", "cli", "worker", "crm_sandbox")

FENCED = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
BACKTICKED = re.compile(r"`([^`]+)`")
PATH = re.compile(r"^[\w.-]+/(?:[\w.-]+/?)*$")
DOTTED = re.compile(rf"^(?:{'|'.join(PACKAGES)})(?:\.\w+)+")


def cited(text: str) -> list[str]:
    """What the text puts in backticks outside fenced blocks, with line breaks inside a span closed up."""
    prose = FENCED.sub("", text)
    return [re.sub(r"\s+", " ", token).strip() for token in BACKTICKED.findall(prose)]


def missing_paths(text: str, root: Path) -> list[str]:
    """Backticked repository paths that are not there (routes such as ``/__sandbox__/`` are not paths)."""
    paths = {t.replace(" ", "") for t in cited(text)}
    return sorted(p for p in paths if PATH.match(p) and not (root / p).exists())


def resolves(name: str) -> bool:
    """Whether ``a.b.c`` imports as a module and then resolves as attributes from its longest module part."""
    parts = name.split(".")
    for split in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[split:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


def unresolved_names(text: str) -> list[str]:
    """Backticked dotted names rooted in a product package that do not resolve (call arguments dropped)."""
    tokens = [t.replace(" ", "") for t in cited(text)]
    files = re.compile(r"\.(py|md|toml|yaml|json)$")  # worker.py is a path, not a name
    names = {m.group(0) for t in tokens if (m := DOTTED.match(t)) and not files.search(m.group(0))}
    return sorted(name for name in names if not resolves(name))


def cycle_section(text: str) -> str:
    """The part of the page that says where each step of the cycle lives."""
    return text[text.index("## The cycle: where each step lives") : text.index("Errors end a cycle")]


def unknown_cycle_names(section: str) -> list[str]:
    """Backticked lower-case names in the cycle section that are no method or field of the cycle's parts.

    The parts: ``sync.cycle._Run`` (the steps), ``Cycle`` and ``CycleOptions`` (what is injected),
    ``StateStore`` (what commits), ``CrmConnector`` (what the CRM is asked), ``sync.leases``.
    """
    import dataclasses

    import sync.leases
    from connectors.base import CrmConnector
    from store import StateStore
    from sync.cycle import Cycle, CycleOptions, _Run

    known = {*dir(_Run), *dir(StateStore), *dir(CrmConnector), *dir(sync.leases)}
    known |= {f.name for f in (*dataclasses.fields(Cycle), *dataclasses.fields(CycleOptions))}
    names = set()
    for token in cited(section):
        name = token.removeprefix("_Run.").split("(")[0]
        if re.fullmatch(r"_?[a-z][a-z_]*", name):
            names.add(name)
    return sorted(names - known)


def test_every_step_of_the_cycle_table_names_real_code() -> None:
    section = cycle_section(DOC.read_text(encoding="utf-8"))
    assert "`_Run._pull`" in section
    assert "`store_batch`" in section
    assert unknown_cycle_names(section) == []
    assert unknown_cycle_names(section + " `_Run._gather` and `store_batches`") == [
        "_gather",
        "store_batches",
    ]


def test_every_cited_path_exists() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert "`sync/cycle.py`" in text  # the check reads the real page
    assert missing_paths(text, ROOT) == []


def test_every_cited_name_resolves() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert "`sync.cycle.run_cycle(cycle: Cycle) -> CycleResult`" in text
    assert unresolved_names(text) == []


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        ("see `sync/cycles.py` and `store/`", ["sync/cycles.py"]),
        ("the `worker/` folder, routes under `/__sandbox__/`", ["worker/"]),
        (
            "`connectors/hubspot/\n  client.py` is there, `connectors/hubspot/\n  clients.py` not",
            ["connectors/hubspot/clients.py"],
        ),
    ],
)
def test_the_path_check_finds_what_is_missing(text: str, missing: list[str]) -> None:
    assert missing_paths(text, ROOT) == missing


@pytest.mark.parametrize(
    ("text", "unresolved"),
    [
        ("`worker.run_cycle(...)`", ["worker.run_cycle"]),  # the claim this page used to make
        ("```\n`a\n```\nthen `worker.py` and `sync.nope`", ["sync.nope"]),  # fences and file names skipped
        ("`sync.cycle.run_cycle(cycle)` and `store.StateStore(url)`", []),
        ("`policies.engine.\n  evaluate` and `policies.nothere.evaluate`", ["policies.nothere.evaluate"]),
    ],
)
def test_the_name_check_finds_what_does_not_resolve(text: str, unresolved: list[str]) -> None:
    assert unresolved_names(text) == unresolved
