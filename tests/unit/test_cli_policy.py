"""`followup plan` and `followup explain` over the bundled example snapshot and policy."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cli import main
from policies.codec import snapshot_to_json
from tests.unit import sales_cases

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = ROOT / "config" / "examples" / "snapshot.json"
POLICY = ROOT / "config" / "policies"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env={"COLUMNS": "240"})
    return result.exit_code, result.output


def test_bundled_snapshot_is_the_seven_cases() -> None:
    """config/examples/snapshot.json is exactly what tests/unit/sales_cases.py generates."""
    assert SNAPSHOT.read_bytes() == snapshot_to_json(sales_cases.example_snapshot(), indent=1) + b"\n"


def test_plan_json_lists_the_decisions_of_the_seven_cases() -> None:
    """`followup plan --json` over the example: every case's action, and the owner cap defers ten tasks."""
    code, out = run("plan", "--snapshot", str(SNAPSHOT), "--policy", str(POLICY), "--json")
    assert code == 0
    document = json.loads(out)
    by_deal: dict[str, list[tuple[str, str]]] = {}
    for action in document["actions"]:
        by_deal.setdefault(action["deal_id"], []).append((action["kind"], action["rule_id"]))
    assert by_deal["ghost"] == [("change_stage", "stop"), ("set_deal_fields", "stop")]
    assert by_deal["callback"] == [("create_task", "agreed_interval")]
    assert by_deal["no-why"] == [("create_task", "next_step")]
    assert ("enrol_in_nurture", "nurture") in by_deal["not-now"]
    assert by_deal["gatekeeper"] == [("create_task", "decision_maker")]
    assert by_deal["unqualified"] == [("create_task", "qualification")]
    pile_now = [d for d in by_deal if d.startswith("pile-")]
    assert len(pile_now) == 20
    assert len(document["deferred"]) == 10
    assert {d["not_before"] for d in document["deferred"]} == {"2026-03-05"}


def test_plan_prints_a_table_with_deferred_actions() -> None:
    """The table view names the deals, the rules and the deferred section."""
    code, out = run("plan", "--snapshot", str(SNAPSHOT), "--policy", str(POLICY))
    assert code == 0
    assert "Deferred by budgets" in out
    assert "decision_maker" in out


def test_explain_prints_every_rule_verdict_for_one_deal() -> None:
    """`followup explain SNAPSHOT --deal ID` shows all eight rules with their verdicts and evidence."""
    code, out = run("explain", str(SNAPSHOT), "--deal", "callback", "--policy", str(POLICY), "--json")
    assert code == 0
    (decision,) = json.loads(out)
    verdicts = {v["rule_id"]: v for v in decision["verdicts"]}
    assert set(verdicts) == {
        "stop",
        "qualification",
        "nurture",
        "next_step",
        "agreed_interval",
        "signals",
        "decision_maker",
        "task_expiry",
    }
    assert verdicts["agreed_interval"]["fired"] is True
    assert {"label": "basis", "value": "agreed interval of 14 days"} in verdicts["agreed_interval"][
        "evidence"
    ]


def test_explain_accepts_the_snapshot_as_an_option_too() -> None:
    """`--snapshot FILE --deal ID` works like the positional form and prints a table."""
    code, out = run("explain", "--snapshot", str(SNAPSHOT), "--deal", "ghost", "--policy", str(POLICY))
    assert code == 0
    assert "36 outbound touches without an answer" in out


def test_explain_of_an_unknown_deal_exits_2() -> None:
    """Asking for a deal the snapshot does not have is a usage problem: exit 2 with its name."""
    code, out = run("explain", str(SNAPSHOT), "--deal", "nope", "--policy", str(POLICY))
    assert code == 2
    assert "no deal 'nope' in the snapshot" in out


def test_plan_with_a_broken_policy_exits_2_with_only_problem_lines(tmp_path: Path) -> None:
    """A broken policy stops `plan` with exit 2 and the file:line:col lines, no traceback."""
    bad = tmp_path / "p.yaml"
    bad.write_text("defaults:\n  stop:\n    max_since_inbound: forever\n")
    code, out = run("plan", "--snapshot", str(SNAPSHOT), "--policy", str(bad))
    assert code == 2
    assert out.splitlines()[0].startswith(f"{bad}:3:5: defaults.stop.max_since_inbound:")
    assert "Traceback" not in out


def test_plan_with_a_broken_snapshot_exits_2(tmp_path: Path) -> None:
    """A snapshot that does not match the format is reported by path, exit 2."""
    bad = tmp_path / "s.json"
    bad.write_text('{"crm": "x", "deals": [{"id": 1}]}')
    code, out = run("plan", "--snapshot", str(bad), "--policy", str(POLICY))
    assert code == 2
    assert "deals.0" in out


def test_plan_at_an_explicit_moment_uses_it() -> None:
    """`--now` decides at that moment: a week earlier the callback task is not due yet."""
    code, out = run(
        "plan",
        "--snapshot",
        str(SNAPSHOT),
        "--policy",
        str(POLICY),
        "--json",
        "--now",
        "2026-02-25T10:00:00+00:00",
    )
    assert code == 0
    document = json.loads(out)
    assert not [a for a in document["actions"] if a["deal_id"] == "callback"]
