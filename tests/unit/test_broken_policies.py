"""Every broken policy in the corpus gives exactly its expected ``file:line:col`` problem lines."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from config.errors import ConfigError
from policies.loader import load_policy

BROKEN = Path(__file__).resolve().parents[1] / "fixtures" / "policies" / "broken"
CASES = sorted(BROKEN.glob("*.yaml"))


def test_the_corpus_has_at_least_thirty_broken_policies() -> None:
    """The corpus covers syntax, unknown keys, types, durations, combinations and time zones: 30 or more."""
    assert len(CASES) >= 30
    assert all(case.with_suffix(".expected").exists() for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_broken_policy_reports_the_expected_problems(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading the file raises ConfigError listing the expected problems, in file order, with places."""
    monkeypatch.chdir(BROKEN)  # problem lines name the file as it was given
    with pytest.raises(ConfigError) as caught:
        load_policy(Path(case.name))
    expected = case.with_suffix(".expected").read_text(encoding="utf-8").splitlines()
    assert list(caught.value.problems) == expected
    assert all(line.startswith(f"{case.name}:") for line in caught.value.problems)


def test_problem_lines_carry_line_and_column() -> None:
    """Each problem line starts with file:line:col so editors can jump to it."""
    for case in CASES:
        for line in case.with_suffix(".expected").read_text(encoding="utf-8").splitlines():
            name, row, col, _ = line.split(":", 3)
            assert name == case.name
            assert row.isdigit()
            assert col.isdigit(), line


def test_templates_never_reach_python_objects() -> None:
    """Attribute and index access in a template is a load error, so it can never run at render time."""
    text = (BROKEN / "26_template_attribute_access.expected").read_text(encoding="utf-8")
    assert "unknown field {deal_name.__class__" in text
    assert os.sep not in text.split(":", 1)[0]
