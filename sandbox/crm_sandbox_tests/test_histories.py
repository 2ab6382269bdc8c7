"""Datasets with histories (``generate(..., history=True)``): every deal's field history ends on its current
values, the stories a backtest needs are there, and the plain datasets are unchanged by the option."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from crm_sandbox.archetypes import HISTORY_ARCHETYPE_WEIGHTS
from crm_sandbox.dataset import (
    ActivityKind,
    Archetype,
    Dataset,
    GenActivity,
    GenFieldChange,
    generate,
    generate_or_load,
    load,
    save,
)

NOW = datetime(2026, 3, 4, 10, 15, tzinfo=UTC)
CURRENT = {  # history field -> the deal attribute holding its current value
    "amount": "amount",
    "close_date": "close_date",
    "next_step": "next_step",
    "next_step_why": "next_step_why",
    "next_step_date": "next_step_date",
    "agreed_interval_days": "agreed_interval_days",
    "agreed_channel": "agreed_channel",
    "readiness": "readiness",
    "qualification_score": "qualification_score",
    "closed_lost_reason": "closed_lost_reason",
    "stage": "stage_id",
    "owner": "owner_id",
}


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(seed=11, deals=600, now=NOW, history=True)


def _rows(dataset: Dataset) -> dict[int, list[GenFieldChange]]:
    rows: dict[int, list[GenFieldChange]] = defaultdict(list)
    for row in dataset.history:
        rows[row.deal_id].append(row)
    return rows


def _activities(dataset: Dataset) -> dict[int, list[GenActivity]]:
    found: dict[int, list[GenActivity]] = defaultdict(list)
    for activity in dataset.activities:
        found[activity.deal_id].append(activity)
    return found


def test_the_history_mix_has_every_story(dataset: Dataset) -> None:
    """All fourteen archetypes of the history mix appear, the four backtest stories included."""
    counts = Counter(deal.archetype for deal in dataset.deals)
    assert set(counts) == {archetype for archetype, _ in HISTORY_ARCHETYPE_WEIGHTS}
    for story in (
        Archetype.WON_AFTER_SILENCE,
        Archetype.LOST_AFTER_TOUCHES,
        Archetype.NURTURE_COMEBACK,
        Archetype.AGREED_CALLBACKS,
    ):
        assert counts[story] >= 20


def test_every_field_history_ends_on_the_current_value(dataset: Dataset) -> None:
    """The last row of each field is what the deal shows now; rows lie between creation and now."""
    rows = _rows(dataset)
    for deal in dataset.deals:
        last: dict[str, object] = {}
        for row in sorted(rows[deal.id], key=lambda r: r.at):
            assert deal.created_at <= row.at < NOW
            last[row.field] = row.value
        for name, attribute in CURRENT.items():
            if name in last:
                assert last[name] == getattr(deal, attribute), (deal.id, name)
        assert last["stage"] == deal.stage_id
        assert {row.value for row in rows[deal.id] if row.field == "contact_added"} == {
            link.contact_id for link in deal.contacts
        }


def test_stage_history_starts_at_the_first_stage_and_enters_the_current_one_when_the_deal_says(
    dataset: Dataset,
) -> None:
    """Every deal starts in its pipeline's first stage; its last stage change is its stage_entered_at."""
    rows = _rows(dataset)
    first = {p.id: p.stages[0].id for p in dataset.pipelines}
    for deal in dataset.deals:
        stages = sorted((r for r in rows[deal.id] if r.field == "stage"), key=lambda r: r.at)
        assert stages[0].value == first[deal.pipeline_id]
        if len(stages) > 1:
            assert stages[-1].at == deal.stage_entered_at


def test_won_after_silence_has_many_unanswered_touches_before_the_reply(dataset: Dataset) -> None:
    """At least seven unanswered touches in a row, then an inbound reply, then the win."""
    activities = _activities(dataset)
    for deal in (d for d in dataset.deals if d.archetype is Archetype.WON_AFTER_SILENCE):
        history = sorted(activities[deal.id], key=lambda a: a.occurred_at)
        run = longest = 0
        for activity in history:
            if activity.direction == "outbound" and activity.outcome in ("sent", "no_answer", "voicemail"):
                run += 1
                longest = max(longest, run)
            elif activity.outcome in ("replied", "connected", "completed"):
                run = 0
        assert longest >= 7  # the silence (an engaged stretch may add an unanswered e-mail or two)
        assert deal.stage_id in ("closedwon", "enterprisewon")


def test_agreed_callbacks_record_an_interval_at_each_call(dataset: Dataset) -> None:
    """Each connected call of an agreed-callback deal records an interval right after it."""
    rows, activities = _rows(dataset), _activities(dataset)
    for deal in (d for d in dataset.deals if d.archetype is Archetype.AGREED_CALLBACKS):
        calls = [
            a.occurred_at
            for a in activities[deal.id]
            if a.kind is ActivityKind.CALL and a.outcome == "connected" and a.direction == "outbound"
        ]
        intervals = [r.at for r in rows[deal.id] if r.field == "agreed_interval_days"]
        assert len(intervals) >= 1
        for at in intervals:
            assert any(timedelta(0) < at - call <= timedelta(hours=1) for call in calls)


def test_nurture_comebacks_were_not_now_then_ready(dataset: Dataset) -> None:
    """Readiness went to not_now and back to ready, with an inbound reply in between."""
    rows = _rows(dataset)
    for deal in (d for d in dataset.deals if d.archetype is Archetype.NURTURE_COMEBACK):
        readiness = [r.value for r in sorted(rows[deal.id], key=lambda r: r.at) if r.field == "readiness"]
        assert "not_now" in readiness
        assert readiness[-1] == "ready"


def test_histories_survive_save_and_load(dataset: Dataset, tmp_path: Path) -> None:
    """The history table is saved and loaded like the others; a file without one loads with none."""
    save(dataset, tmp_path / "ds")
    assert load(tmp_path / "ds") == dataset
    cached = generate_or_load(11, 600, NOW, tmp_path / "cache", history=True)
    assert cached == dataset
    assert generate_or_load(11, 600, NOW, tmp_path / "cache").history == ()


def test_the_option_leaves_plain_datasets_alone() -> None:
    """The same seed without histories gives the plain mix, the same as ever, with no history rows."""
    plain = generate(seed=11, deals=100, now=NOW)
    assert plain.history == ()
    assert plain == generate(seed=11, deals=100, now=NOW, history=False)
    assert Archetype.WON_AFTER_SILENCE not in {d.archetype for d in plain.deals}
