"""``tasks.combine`` through the real ``followup`` command (a subprocess, ``--json`` into a parser): the
schema knows it, validate names a bad value's place, plan and explain show the combined task's items."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from policies.codec import snapshot_to_json
from tests.unit.sales_cases import example_snapshot
from tests.unit.test_combine import three_needs

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "config" / "policies"
FOLLOWUP = str(Path(sys.executable).parent / "followup")


def followup(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FOLLOWUP, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"COLUMNS": "200", "PATH": str(Path(sys.executable).parent)},
    )


def _snapshot(tmp_path: Path) -> Path:
    """The bundled example plus one deal with three needs (follow-up due, vague next step, gatekeeper)."""
    snapshot = example_snapshot()
    path = tmp_path / "snapshot.json"
    path.write_bytes(snapshot_to_json(replace(snapshot, deals=(*snapshot.deals, three_needs()))))
    return path


def _creates(document: dict[str, Any], deal_id: str) -> list[dict[str, Any]]:
    actions = [*document["actions"], *(d["action"] for d in document["deferred"])]
    return [a for a in actions if a["deal_id"] == deal_id and a["kind"] == "create_task"]


def test_schema_documents_tasks_combine_on_by_default() -> None:
    result = followup("schema")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    tasks = schema["$defs"]["TaskSettings"]
    assert tasks["properties"]["combine"]["type"] == "boolean"
    assert tasks["properties"]["combine"]["default"] is True
    assert tasks["additionalProperties"] is False


def test_validate_names_the_place_of_a_bad_combine_value(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks:\n  combine: maybe\n  merge: true\n", encoding="utf-8")
    result = followup("validate", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"{bad}:2:3: tasks.combine: Input should be a valid boolean, unable to interpret input",
        f"{bad}:3:3: tasks.merge: unknown key (see `followup schema` or docs/policies.md for the allowed "
        "ones)",
    ]


def test_plan_shows_one_combined_task_and_one_task_per_rule_with_combine_off(tmp_path: Path) -> None:
    snapshot = _snapshot(tmp_path)
    result = followup("plan", "--snapshot", str(snapshot), "--policy", str(POLICY), "--json")
    assert result.returncode == 0, result.stderr
    (task,) = _creates(json.loads(result.stdout), "combo")
    assert task["rule_id"] == "conversation"
    assert [i["item"]["rule_id"] for i in task["items"]] == ["agreed_interval", "next_step", "decision_maker"]
    assert all(i["why"] and i["evidence"] for i in task["items"])

    separate = tmp_path / "policies"
    shutil.copytree(POLICY, separate)
    shipped = (separate / "followup.yaml").read_text(encoding="utf-8")
    assert "tasks:\n  combine: true\n" in shipped
    (separate / "followup.yaml").write_text(
        shipped.replace("combine: true", "combine: false"), encoding="utf-8"
    )
    result = followup("plan", "--snapshot", str(snapshot), "--policy", str(separate), "--json")
    assert result.returncode == 0, result.stderr
    rules = sorted(t["rule_id"] for t in _creates(json.loads(result.stdout), "combo"))
    assert rules == ["agreed_interval", "decision_maker", "next_step"]


def test_explain_shows_every_verdict_and_the_combined_task_with_its_items(tmp_path: Path) -> None:
    snapshot = _snapshot(tmp_path)
    result = followup("explain", str(snapshot), "--deal", "combo", "--policy", str(POLICY), "--json")
    assert result.returncode == 0, result.stderr
    (decision,) = json.loads(result.stdout)
    fired = {v["rule_id"] for v in decision["verdicts"] if v["fired"]}
    assert {"agreed_interval", "next_step", "decision_maker"} <= fired
    (action,) = decision["actions"]
    assert len(action["items"]) == 3
    table = followup("explain", str(snapshot), "--deal", "combo", "--policy", str(POLICY))
    assert table.returncode == 0, table.stderr
    assert "create_task: call task due" in table.stdout
    for title in (
        "[ ] Follow up with Sam Assistant",
        "[ ] Agree the next step",
        "[ ] Reach the decision maker",
    ):
        assert title in table.stdout
