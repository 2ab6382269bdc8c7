"""``followup demo``, the README's first command: plan, a real cycle, and tasks as a rep sees them."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_demo_runs_a_plan_and_a_cycle_and_shows_tasks(crm: str, tmp_path: Path) -> None:
    """The demo completes on a fresh sandbox, prints all three steps, and keeps its state where asked."""
    result = CliRunner().invoke(
        main, ["demo", "--crm", crm, "--deals", "25", "--tasks", "2", "--keep", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    for heading in ("1 · plan", "2 · one real cycle", "3 · what a rep now sees in the CRM"):
        assert heading in result.output
    assert "applied" in result.output
    assert (tmp_path / "state.sqlite").exists()
    assert (tmp_path / "settings.yaml").exists()
    report = tmp_path / "report.html"
    assert f"Report: {report}" in " ".join(result.output.split())  # rich may wrap the long path
    assert "Pipeline hygiene" in report.read_text(encoding="utf-8")
