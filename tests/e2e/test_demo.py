"""``followup demo``, the README's first command: plan, a real cycle, and tasks as a rep sees them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from store import StateStore

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


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_the_demos_first_cycle_gives_each_deal_at_most_one_task(crm: str, tmp_path: Path) -> None:
    """One conversation, one task (``tasks.combine``, on in the shipped policy): in the demo's first cycle
    no deal gets more than one new task, deals with several needs get one combined task, and the demo
    shows one with its checklist."""
    followup = Path(sys.executable).with_name("followup")  # a process of its own: logging stays as it was
    command = [str(followup), "demo", "--crm", crm, "--tasks", "2", "--keep", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    store = StateStore(f"sqlite:///{tmp_path / 'state.sqlite'}")
    try:
        creates = [e for e in store.ledger("demo") if e.kind == "create_task" and e.status == "applied"]
    finally:
        store.close()
    per_deal = Counter(e.deal_id for e in creates)
    assert creates
    assert max(per_deal.values()) == 1, per_deal.most_common(3)
    assert any(e.rule_id == "conversation" for e in creates)  # the seeded data has deals with several needs
    assert "One conversation with" in done.stdout  # the combined task, as the rep reads it


def test_demo_policy_option_runs_the_cycle_with_that_policy(tmp_path: Path) -> None:
    """``followup demo --policy``, as a user runs it: with a copy of the shipped policy that switches
    ``tasks.combine`` off, the same seeded data gives some deals a task per rule (the figure before)."""
    separate = tmp_path / "policies"
    shutil.copytree(Path(__file__).resolve().parents[2] / "config" / "policies", separate)
    main_file = separate / "followup.yaml"
    text = main_file.read_text(encoding="utf-8")
    assert "combine: true" in text
    main_file.write_text(text.replace("combine: true", "combine: false"), encoding="utf-8")
    kept = tmp_path / "demo"
    followup = Path(sys.executable).with_name("followup")
    command = [str(followup), "demo", "--crm", "hubspot", "--tasks", "0", "--keep", str(kept)]
    done = subprocess.run([*command, "--policy", str(separate)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"policy: '{separate.resolve()}'" in (kept / "settings.yaml").read_text(encoding="utf-8")
    store = StateStore(f"sqlite:///{kept / 'state.sqlite'}")
    try:
        creates = [e for e in store.ledger("demo") if e.kind == "create_task" and e.status == "applied"]
    finally:
        store.close()
    assert max(Counter(e.deal_id for e in creates).values()) > 1
    assert not any(e.rule_id == "conversation" for e in creates)
