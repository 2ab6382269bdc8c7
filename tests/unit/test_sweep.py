"""Policy variants for the backtest (``--sweep``) and the simulated worker's cycles."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from config.errors import ConfigError
from policies.backtest import percentile
from policies.replay import working_ticks
from policies.sweep import parse_sweep, shadowing_overrides, variants
from tests.unit.builders import policy

OVERRIDDEN = policy(
    """
overrides:
  - name: patient enterprise
    when: {pipelines: [enterprise]}
    rules: {stop: {max_unanswered_touches: 9}}
"""
)


def test_a_sweep_changes_the_default_and_names_the_overrides_that_keep_their_own() -> None:
    chosen = variants([("p", OVERRIDDEN)], [parse_sweep("stop.max_unanswered_touches=4,null")])
    assert [v.name for v in chosen] == ["stop.max_unanswered_touches=4", "stop.max_unanswered_touches=null"]
    assert [v.policy.defaults.stop.max_unanswered_touches for v in chosen] == [4, None]
    assert all(v.shadowed_by == ("patient enterprise",) for v in chosen)
    assert OVERRIDDEN.defaults.stop.max_unanswered_touches == 6  # the loaded policy is left alone
    assert shadowing_overrides(OVERRIDDEN, "stop.max_since_inbound") == ()


def test_sweeps_combine_and_reach_budgets_and_durations() -> None:
    chosen = variants(
        [("a", OVERRIDDEN), ("b", OVERRIDDEN)],
        [
            parse_sweep("budgets.max_new_tasks_per_owner_per_day=5,10"),
            parse_sweep("stop.max_since_inbound=60d"),
        ],
    )
    assert len(chosen) == 4
    assert chosen[0].name == "a budgets.max_new_tasks_per_owner_per_day=5 stop.max_since_inbound=60d"
    assert chosen[1].policy.budgets.max_new_tasks_per_owner_per_day == 10
    assert str(chosen[3].policy.defaults.stop.max_since_inbound) == "60d"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("stop.max_unanswered_touches", "expected KEY=VALUE"),
        ("stop.nonsense=1", "stop.nonsense: unknown key; stop has enabled, max_unanswered_touches"),
        ("stop=1", "stop is a section; sweep one of its settings"),
        ("stop.max_unanswered_touches=0", "greater than or equal to 1"),
        ("stop.max_since_inbound=soon", "is not a duration such as"),
        ("nurture.list=null", "nurture.list: nurture is enabled but names no list or campaign"),
    ],
)
def test_bad_sweeps_are_problems_that_name_the_sweep(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        variants([("p", OVERRIDDEN)], [parse_sweep(text)])
    assert any(
        line.startswith(f"--sweep {text.split(',')[0]}") and problem in line for line in caught.value.problems
    )


def test_cycles_run_every_step_inside_working_hours_on_business_days() -> None:
    calendar = policy().calendar_for(None)  # UTC, 09:00-17:00, Monday to Friday
    ticks = working_ticks(calendar, date(2026, 3, 6), date(2026, 3, 9), timedelta(hours=4))
    assert ticks == [
        datetime(2026, 3, 6, 9, tzinfo=UTC),
        datetime(2026, 3, 6, 13, tzinfo=UTC),
        datetime(2026, 3, 6, 17, tzinfo=UTC),
        datetime(2026, 3, 9, 9, tzinfo=UTC),
        datetime(2026, 3, 9, 13, tzinfo=UTC),
        datetime(2026, 3, 9, 17, tzinfo=UTC),
    ]
    assert (
        working_ticks(calendar, date(2026, 3, 6), date(2026, 3, 9), timedelta(hours=4), ticks[1]) == ticks[:2]
    )


def test_percentiles_are_nearest_rank() -> None:
    assert percentile([], 0.95) == 0.0
    assert percentile([3, 1, 2], 0.5) == 2.0
    assert percentile(list(range(1, 21)), 0.95) == 19.0
