"""``followup backtest`` and ``followup demo --snapshot-out`` as a user runs them: the real command in a
subprocess, ``--json`` piped into a parser and checked against the published JSON Schema, every problem a
located line with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from connectors.sandbox_dataset import snapshot_from_dataset
from policies.codec import snapshot_to_json

ROOT = Path(__file__).resolve().parents[2]
FOLLOWUP = Path(sys.executable).parent / "followup"
EXAMPLE = ROOT / "config" / "examples" / "history.json"
SCHEMA = json.loads((ROOT / "docs" / "backtest.schema.json").read_text(encoding="utf-8"))
EXAMPLE_NOW = datetime(2026, 3, 4, 10, 15, tzinfo=UTC)


def followup(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [str(FOLLOWUP), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def _valid(document: dict[str, Any]) -> dict[str, Any]:
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(document)
    return document


def test_the_bundled_example_is_what_the_generator_makes() -> None:
    """config/examples/history.json is `followup demo --snapshot-out` for 80 deals, seed 7, at its moment."""
    from crm_sandbox.dataset import generate

    expected = snapshot_to_json(snapshot_from_dataset(generate(7, 80, EXAMPLE_NOW, history=True)))
    assert EXAMPLE.read_bytes() == expected


def test_the_readme_command_prints_the_tables() -> None:
    """`followup backtest --snapshot config/examples/history.json` (README "Try it") runs and reports."""
    result = followup("backtest", "--snapshot", "config/examples/history.json")
    assert result.returncode == 0, result.stderr
    for heading in ("Policy variants side by side", "false kills", "per owner", "Agreed follow-ups"):
        assert heading in result.stdout
    assert "2025-09-05 .. 2026-03-04" in result.stdout  # the 180 days before the snapshot was taken


def test_json_with_a_sweep_and_two_policies_follows_the_schema() -> None:
    """Variants side by side: two policy paths times two swept values, every figure schema-valid."""
    result = followup(
        "backtest",
        "--snapshot",
        str(EXAMPLE),
        "--policy",
        "config/policies",
        "--policy",
        "config/policies/followup.yaml",
        "--sweep",
        "stop.qualified_deals=close_lost,nurture",
        "--from",
        "2025-12-01",
        "--to",
        "2026-02-27",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    report = _valid(json.loads(result.stdout))
    assert [v["name"] for v in report["variants"]] == [
        "config/policies stop.qualified_deals=close_lost",
        "config/policies stop.qualified_deals=nurture",
        "config/policies/followup.yaml stop.qualified_deals=close_lost",
        "config/policies/followup.yaml stop.qualified_deals=nurture",
    ]
    assert (report["period"]["from"], report["period"]["to"]) == ("2025-12-01", "2026-02-27")
    closing, nurturing = report["variants"][:2]
    assert closing["account"]["stops"]["stopped"] > nurturing["account"]["stops"]["stopped"]
    assert nurturing["account"]["nurture"]["enrolments"] > closing["account"]["nurture"]["enrolments"]
    for figure in ("false_kills", "true_stops"):
        assert closing["account"]["stops"][figure] == len(closing[figure])
    assert closing["account"]["busy_work"]["tasks_created"] > 0
    assert report["compliance"]["account"]["agreements"] > 0
    assert report["variants"][0]["account"] == report["variants"][2]["account"]  # same policy, two paths


def test_demo_writes_a_snapshot_with_history_that_the_backtest_reads(tmp_path: Path) -> None:
    """`followup demo --snapshot-out` then `followup backtest --snapshot` on it: every metric non-trivial."""
    out = tmp_path / "pipeline.json"
    wrote = followup(
        "demo",
        "--snapshot-out",
        str(out),
        "--deals",
        "400",
        "--seed",
        "3",
        "--now",
        "2026-03-04T10:15:00+00:00",
    )
    assert wrote.returncode == 0, wrote.stderr
    assert "followup backtest --snapshot" in wrote.stdout
    result = followup(
        "backtest", "--snapshot", str(out), "--sweep", "budgets.max_new_tasks_per_owner_per_day=2", "--json"
    )
    assert result.returncode == 0, result.stderr
    [variant] = _valid(json.loads(result.stdout))["variants"]
    account = variant["account"]
    assert account["stops"]["false_kills"] > 0
    assert account["stops"]["true_stops"] > 0
    assert account["stops"]["days_saved"] > 0
    assert account["busy_work"]["days_at_cap"] > 0
    assert account["busy_work"]["deferred"] > 0
    assert account["busy_work"]["expired"] > 0
    assert account["nurture"]["enrolments"] > 0
    assert account["nurture"]["reactivations"] > 0
    assert variant["api_calls"]["hubspot"]["total"] > 0
    compliance = json.loads(result.stdout)["compliance"]["account"]
    assert min(compliance[v] for v in ("early", "on_time", "late", "never")) > 0


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--sweep", "stop.max_unanswered_touchez=4,6"],
            "--sweep stop.max_unanswered_touchez=4: stop.max_unanswered_touchez: unknown key; stop has",
        ),
        (
            ["--sweep", "stop.max_unanswered_touches=0"],
            "--sweep stop.max_unanswered_touches=0: Input should be",
        ),
        (["--sweep", "stop"], "--sweep stop: expected KEY=VALUE"),
        (["--from", "last monday"], "--from: 'last monday' is not a date"),
        (["--from", "2026-03-01", "--to", "2026-02-01"], "--from 2026-03-01 is after --to 2026-02-01"),
        (["--policy", "nowhere.yaml"], "nowhere.yaml: no such policy file or folder"),
    ],
)
def test_bad_options_are_located_problems_with_exit_2(args: list[str], expected: str) -> None:
    result = followup("backtest", "--snapshot", str(EXAMPLE), *args)
    assert result.returncode == 2
    assert expected in result.stderr
    assert result.stdout == ""


def test_snapshot_problems_are_located(tmp_path: Path) -> None:
    """A bad history value names its path; a history of an unknown deal too; no history at all says so."""
    bad = tmp_path / "bad.json"
    bad.write_text(
        '{"crm": "hubspot", "deals": [], "taken_at": "2026-03-04T10:00:00Z", "history": {"deals": '
        '{"d9": {"changes": [{"at": "2026-01-05T09:00:00Z", "field": "close_date", "value": "soon"}]}}}}',
        encoding="utf-8",
    )
    result = followup("backtest", "--snapshot", str(bad))
    assert result.returncode == 2
    assert (
        f"{bad}:1:110: history.deals.d9.changes.0: expected a date such as 2026-03-04, not 'soon'"
        in result.stderr
    )
    stray = tmp_path / "stray.json"
    stray.write_text(
        '{"crm": "hubspot", "deals": [], "taken_at": "2026-03-04T10:00:00Z",'
        ' "history": {"deals": {"d9": {}}}}',
        encoding="utf-8",
    )
    result = followup("backtest", "--snapshot", str(stray))
    assert result.returncode == 2
    assert f"{stray}: history.deals.d9: no deal 'd9' in the snapshot's deals" in result.stderr
    result = followup("backtest", "--snapshot", str(ROOT / "config" / "examples" / "snapshot.json"))
    assert result.returncode == 2
    assert "history: this snapshot has no history, so there is nothing to replay" in result.stderr


def test_live_mode_says_the_history_pull_is_not_there_yet(tmp_path: Path) -> None:
    """--settings is accepted; until the connectors can pull histories the answer is a clear exit 2."""
    settings = tmp_path / "settings.yaml"
    settings.write_text("accounts: {}\n", encoding="utf-8")
    result = followup("backtest", "--settings", str(settings), "--account", "acme")
    assert result.returncode == 2
    assert "live history pull not available yet" in result.stderr
    assert "--snapshot FILE" in result.stderr
    both = followup("backtest", "--settings", str(settings), "--snapshot", str(EXAMPLE))
    assert both.returncode == 2
    assert "not both" in both.stderr
