"""``nurture.close_rep_tasks``: which of the rep's own tasks a nurture closes, as a table.

Only the deal owner's open follow-up tasks (call, e-mail, to-do) on the deal; never another person's,
never a meeting, never one already closed; nothing at all with the setting off (the default).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from textwrap import dedent

import pytest

from config.errors import ConfigError
from policies.engine import evaluate
from policies.model import CloseReason, CloseTask, EnrolInNurture, Readiness, RepTask, TaskType
from policies.simulate import apply_actions
from tests.unit.builders import NOW, deal, policy

OWNER_CALL = RepTask("r1", "o1", TaskType.CALL, "Call back about pricing", NOW)
OWNER_EMAIL = RepTask("r2", "o1", TaskType.EMAIL, "Send the case study")
OWNER_TODO = RepTask("r3", "o1", TaskType.TODO, "Prepare the offer")
OWNER_MEETING = RepTask("r4", "o1", TaskType.MEETING, "Demo prep")
COLLEAGUE_CALL = RepTask("r5", "o2", TaskType.CALL, "Call their CFO")
OWNER_CLOSED = RepTask("r6", "o1", TaskType.CALL, "Done already", is_open=False)
ALL = (OWNER_CALL, OWNER_EMAIL, OWNER_TODO, OWNER_MEETING, COLLEAGUE_CALL, OWNER_CLOSED)


def nurture_policy(close_rep_tasks: str | None) -> str:
    setting = f"\n    close_rep_tasks: {close_rep_tasks}" if close_rep_tasks is not None else ""
    return f"""
calendar:
  time_zone: UTC
stages:
  default: {{lost: closedlost}}
defaults:
  nurture:
    enabled: true
    list: Nurture{setting}
  qualification: {{enabled: false}}
"""


def rep_closes(close_rep_tasks: str | None, rep_tasks: tuple[RepTask, ...] = ALL) -> list[CloseTask]:
    rules = policy(base=nurture_policy(close_rep_tasks))
    subject = replace(deal(readiness=Readiness.NOT_NOW), rep_tasks=rep_tasks)
    actions = evaluate(rules, subject, NOW).actions
    assert any(isinstance(a, EnrolInNurture) for a in actions)  # the deal does go to nurture
    return [a for a in actions if isinstance(a, CloseTask) and not a.task_key]


@pytest.mark.parametrize(
    ("setting", "closed"),
    [
        (None, []),  # off by default
        ("false", []),
        ("true", ["r1", "r2", "r3"]),  # the owner's open call, e-mail and to-do; no meeting, no colleague
    ],
)
def test_a_nurture_closes_only_the_owners_open_follow_up_tasks(
    setting: str | None, closed: list[str]
) -> None:
    """With the setting on, the owner's open call, e-mail and to-do tasks on the deal close, with the
    nurture's explanation as their reason; a colleague's task, a meeting and a closed task are left."""
    closes = rep_closes(setting)
    assert [c.task_id for c in closes] == closed
    assert {c.reason for c in closes} <= {CloseReason.DEAL_STOPPED}
    assert all(c.explanation.summary for c in closes)


def test_the_mirror_after_the_nurture_knows_which_tasks_are_closed() -> None:
    """Applied (``policies.simulate``, the mirror's write-through), the closes leave the deal with the
    meeting and the colleague's task open, and a new evaluation closes nothing more."""
    rules = policy(base=nurture_policy("true"))
    subject = replace(deal(readiness=Readiness.NOT_NOW), rep_tasks=ALL)
    first = evaluate(rules, subject, NOW).actions
    after = apply_actions(subject, first, NOW)
    assert [t.id for t in after.rep_tasks if t.is_open] == ["r4", "r5"]
    again = [a for a in evaluate(rules, after, NOW).actions if isinstance(a, CloseTask)]
    assert again == []


def test_the_setting_is_validated_where_it_is_written() -> None:
    """A value that is not a boolean is an error that names the key."""
    with pytest.raises(ConfigError) as info:
        policy(base=nurture_policy("sometimes"))
    assert any("defaults.nurture.close_rep_tasks" in p for p in info.value.problems)


def test_followup_schema_and_validate_know_the_setting(tmp_path: Path) -> None:
    """``followup schema`` documents it (a boolean, off by default); ``followup validate`` accepts it and
    rejects a bad value at its file:line:col with exit status 2."""
    followup = str(Path(sys.executable).parent / "followup")
    printed = subprocess.run([followup, "schema"], capture_output=True, text=True, check=True).stdout
    setting = json.loads(printed)["$defs"]["NurtureRule"]["properties"]["close_rep_tasks"]
    assert (setting["type"], setting["default"]) == ("boolean", False)
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(dedent(nurture_policy("true")), encoding="utf-8")
    bad.write_text(dedent(nurture_policy("sometimes")), encoding="utf-8")
    assert subprocess.run([followup, "validate", str(good)], capture_output=True, check=False).returncode == 0
    refused = subprocess.run([followup, "validate", str(bad)], capture_output=True, text=True, check=False)
    assert refused.returncode == 2
    assert f"{bad}:10:" in refused.stderr + refused.stdout
    assert "defaults.nurture.close_rep_tasks" in refused.stderr + refused.stdout
