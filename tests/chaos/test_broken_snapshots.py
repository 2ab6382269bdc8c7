"""Every broken snapshot in the corpus is refused by ``followup plan --snapshot`` (and ``explain``): exit 2
with exactly its expected ``file:line:col`` lines: syntax, shape, and values the engine cannot use."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.errors import ConfigError
from config.jsonsource import read_json_text
from policies.codec import load_snapshot
from tests.chaos.conftest import FIXTURES, REPO, followup

CORPUS = FIXTURES / "snapshots"
CASES = sorted(CORPUS.glob("*.json"))
POLICY = str(REPO / "config" / "policies")

pytestmark = pytest.mark.chaos


def expected(case: Path) -> list[str]:
    return case.with_suffix(".expected").read_text(encoding="utf-8").splitlines()


def test_the_corpus_has_at_least_thirty_broken_snapshots_each_with_located_lines() -> None:
    """Syntax, shape, zones, numbers, dates, nesting, encoding: 30 or more files, every line located."""
    assert len(CASES) >= 30
    for case in CASES:
        lines = expected(case)
        assert lines, case.name
        for line in lines:
            name, row, col, _ = line.split(":", 3)
            assert name == case.name, line
            assert row.isdigit(), line
            assert col.isdigit(), line


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_plan_refuses_the_snapshot_with_its_located_problems(case: Path) -> None:
    """`followup plan --snapshot FILE`: exit 2, exactly the expected lines on stderr, nothing on stdout."""
    result = followup(["plan", "--snapshot", case.name, "--policy", POLICY, "--json"], cwd=CORPUS)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.splitlines() == expected(case)
    assert result.stdout == ""


@pytest.mark.parametrize("case", CASES[:: max(1, len(CASES) // 6)], ids=lambda p: p.stem)
def test_explain_refuses_it_the_same_way(case: Path) -> None:
    """`followup explain FILE` reads snapshots the same way (a sample of the corpus)."""
    result = followup(["explain", case.name, "--policy", POLICY], cwd=CORPUS)
    assert result.returncode == 2
    assert result.stderr.splitlines() == expected(case)


def test_the_shipped_example_snapshot_passes_the_same_checks() -> None:
    """The checks refuse nothing that is real: the example snapshot loads whole."""
    snapshot = load_snapshot(read_json_text(REPO / "config" / "examples" / "snapshot.json"))
    assert len(snapshot.deals) == 36


def test_a_problem_in_a_reordered_activity_points_at_its_place_in_the_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Deal sorts activities by time; the one dated year 4500 (first in the file) is still named as item 0."""
    monkeypatch.chdir(CORPUS)
    with pytest.raises(ConfigError) as caught:
        load_snapshot(read_json_text(Path("23_activity_in_year_4500.json")))
    (problem,) = caught.value.problems
    assert ": deals.0.activities.0.occurred_at: 4500-01-01" in problem
