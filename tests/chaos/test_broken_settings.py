"""Every broken settings file in the corpus is refused by ``followup run --once --settings`` with exit 2 and
exactly its expected ``file:line:col`` lines; ``followup validate`` says the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.errors import ConfigError
from tests.chaos.conftest import FIXTURES, followup
from worker import validate_settings

CORPUS = FIXTURES / "settings"
CASES = sorted(CORPUS.glob("*.yaml"))

pytestmark = pytest.mark.chaos


def expected(case: Path) -> list[str]:
    return case.with_suffix(".expected").read_text(encoding="utf-8").splitlines()


def test_the_corpus_has_at_least_thirty_broken_settings_files_each_with_located_lines() -> None:
    """Syntax, shape, duplicates, store URLs, schedules, numbers, connector sections: 30 or more files."""
    assert len(CASES) >= 30
    for case in CASES:
        lines = expected(case)
        assert lines, case.name
        for line in lines:
            name, row, col, _ = line.split(":", 3)
            assert row.isdigit(), line
            assert col.isdigit(), line
            assert name in (case.name, "policies/broken.yaml"), line


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_run_once_refuses_the_file_with_its_located_problems(case: Path) -> None:
    """`followup run --once --settings FILE`: exit 2, exactly the expected lines on stderr, no traceback."""
    result = followup(["run", "--once", "--settings", case.name], cwd=CORPUS, env={"CHAOS_TOKEN": "x"})
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.splitlines() == expected(case)
    assert result.stdout == ""


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_validate_reports_the_same_problems(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What `followup validate` checks for a settings file (worker.validate_settings) gives the same lines."""
    monkeypatch.chdir(CORPUS)
    with pytest.raises(ConfigError) as caught:
        validate_settings(Path(case.name))
    assert list(caught.value.problems) == expected(case)


def test_validate_on_the_corpus_folder_exits_2_and_names_every_file() -> None:
    """`followup validate FOLDER` recognises the settings files among them and reports every one."""
    result = followup(["validate", "."], cwd=CORPUS)
    assert result.returncode == 2
    named = {line.split(":", 1)[0] for line in result.stderr.splitlines()}
    assert {case.name for case in CASES} - named <= {"15_broken_policy.yaml"}  # its problem is in the policy
    assert "policies/broken.yaml" in named
    assert "Traceback" not in result.stderr
