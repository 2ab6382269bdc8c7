"""Field histories for generated deals: how each deal got to what it shows now.

Used by the generator (sandbox/crm_sandbox/generator.py) when a dataset is generated with ``history=True``.
A deal's history is a list of ``GenFieldChange`` rows, CRM-neutral; each sandbox may render them the way
its CRM does (HubSpot: property versions; Salesforce: OpportunityHistory and OpportunityFieldHistory rows).

The rows follow what reps do, anchored on the deal's own conversations (replies, connected calls, held
meetings), a few minutes after each:

- stage: the pipeline's first stage at creation, then up the open stages at conversations, to the stage
  the deal is in (at ``stage_entered_at``); a closed deal reaches the stage it was in before closing, then
  closes at its close moment; a nurtured deal moves to the nurture stage;
- amount: often a first estimate at creation, the current value later; close date: pushed out by a month
  whenever a conversation finds it (nearly) past, and the current value last;
- next step (what, why, date): a concrete step, dated one to four weeks out, after most conversations; the
  current one last;
- agreed interval and channel, readiness, qualification score: set at a conversation;
- owner: a few deals were reassigned once; contacts join the deal at creation or at a conversation;
- closed lost reason: at the close.

A story may dictate changes itself (``Story.changes``: a readiness "not now" months ago, a callback agreed
on each call); the derived rows then leave that field alone. Every field ends on the deal's current value.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from crm_sandbox.archetypes import Plan, Story
from crm_sandbox.dataset import ActivityKind, GenFieldChange, GenPipeline, GenStage
from crm_sandbox.names import CONCRETE_STEPS, VAGUE_NEXT_STEPS
from crm_sandbox.pipelines import stage_for_level
from crm_sandbox.workhours import WorkingHoursClock

__all__ = ["deal_history"]

Timed = tuple[Plan, int, int]  # (plan, occurred ts, booked ts)
Value = str | int | float | date | None
_MINUTE = 60
_EARLY = frozenset({"qualification_score", "readiness", "amount"})  # settled early in a deal's life


def _conversation(plan: Plan) -> bool:
    kind, direction, _, outcome = plan[0], plan[1], plan[2], plan[3]
    if kind is ActivityKind.EMAIL:
        return direction == "inbound" and outcome == "replied"
    if kind is ActivityKind.CALL:
        return outcome == "connected"
    return kind is ActivityKind.MEETING and outcome == "completed"


def _day(ts: int) -> date:
    return datetime.fromtimestamp(ts, UTC).date()


class _Rows:
    """The rows of one deal, in epoch seconds, kept inside [created, now)."""

    def __init__(self, created_ts: int, now_ts: int) -> None:
        self.created_ts = created_ts
        self.now_ts = now_ts
        self.rows: list[tuple[int, str, Value]] = []

    def add(self, ts: int, name: str, value: Value) -> None:
        self.rows.append((min(max(ts, self.created_ts), self.now_ts - 1), name, value))

    def last(self, name: str) -> tuple[int, Value] | None:
        found = [(ts, value) for ts, field, value in self.rows if field == name]
        return max(found, key=lambda row: row[0]) if found else None


def deal_history(
    rng: random.Random,
    clock: WorkingHoursClock,
    *,
    deal_id: int,
    owner_id: int,
    owners: int,
    story: Story,
    pipeline: GenPipeline,
    stage: GenStage,
    created_ts: int,
    stage_ts: int,
    timed: Sequence[Timed],
    final: dict[str, Value],
    contact_ids: Sequence[int],
) -> list[GenFieldChange]:
    """The history rows of one deal (see the module docstring); ``final`` holds its current values."""
    rows = _Rows(created_ts, clock.now_ts)
    talks = sorted(ts for plan, ts, _ in timed if ts < clock.now_ts and plan[2] >= 0 and _conversation(plan))
    by_day = {plan[2]: ts for plan, ts, _ in timed if plan[2] >= 0}
    explicit = {name for _, name, _ in story.changes}

    def after_talk(ts: int) -> int:
        return ts + rng.randint(5, 45) * _MINUTE

    for day, name, value in story.changes:
        at = by_day.get(day)
        ts = after_talk(at) if at is not None else clock.at(day, owner_id)
        if name == "next_step_date" and isinstance(value, int):
            value = clock.date_in(-value)
        assert value is None or isinstance(value, str | int | float | date)
        rows.add(ts, name, value)
    _stages(rng, rows, story, pipeline, stage, created_ts, stage_ts, talks)
    _owner(rng, rows, owner_id, owners, created_ts, clock.now_ts)
    amount = final.get("amount")
    if "amount" not in explicit and isinstance(amount, int | float) and rng.random() < 0.6:
        estimate = round(amount * rng.uniform(0.6, 1.3) / 500) * 500.0  # a first estimate
        rows.add(created_ts, "amount", max(500.0, estimate))
    if "close_date" not in explicit:
        _close_dates(rng, rows, created_ts, talks)
    if (
        "qualification_score" not in explicit
        and final.get("qualification_score") is not None
        and rng.random() < 0.3
    ):
        rows.add(created_ts, "qualification_score", float(rng.randint(10, 45)))
    if "readiness" not in explicit and final.get("readiness") not in (None, "unknown"):
        rows.add(created_ts, "readiness", "unknown")
    # Closed deals had next steps while they were open (cleared at the close, below).
    if "next_step" not in explicit and (final.get("next_step") is not None or stage.is_closed):
        vague = final.get("next_step") in VAGUE_NEXT_STEPS
        if not vague and rng.random() < 0.5:  # a first step written when the deal was created
            what, why = rng.choice(CONCRETE_STEPS)
            rows.add(created_ts, "next_step", what)
            rows.add(created_ts, "next_step_why", why)
            rows.add(created_ts, "next_step_date", _day(created_ts) + timedelta(days=rng.randint(7, 21)))
        for ts in talks[:-1]:
            if rng.random() < 0.8:
                if vague:
                    rows.add(after_talk(ts), "next_step", rng.choice(VAGUE_NEXT_STEPS))
                else:
                    what, why = rng.choice(CONCRETE_STEPS)
                    rows.add(after_talk(ts), "next_step", what)
                    rows.add(after_talk(ts), "next_step_why", why)
                    rows.add(after_talk(ts), "next_step_date", _day(ts) + timedelta(days=rng.randint(7, 30)))
    for index, contact_id in enumerate(contact_ids):
        joined = (
            created_ts if index == 0 or not talks or rng.random() < 0.5 else after_talk(rng.choice(talks))
        )
        rows.add(joined, "contact_added", contact_id)
    # Every field ends on the deal's current value, unless it already does: qualification, readiness and
    # amount are settled early (at the first conversation, or within days of creation); the next step and
    # the agreement at the last conversation; always after the field's earlier rows.
    for name, value in final.items():
        if value is None:
            previous = rows.last(name)
            if previous is not None and previous[1] is not None:  # cleared: at the close, or by the rep
                ts = stage_ts if stage.is_closed else after_talk(talks[-1] if talks else created_ts)
                rows.add(max(ts, previous[0] + _MINUTE), name, None)
            continue
        if name == "closed_lost_reason":
            rows.add(stage_ts, name, value)
            continue
        previous = rows.last(name)
        if previous is not None and previous[1] == value:
            continue
        if not talks:
            ts = created_ts + rng.randint(1, 72 if name in _EARLY else 2) * 3600
        else:
            ts = after_talk(talks[0] if name in _EARLY else talks[-1])
        if previous is not None and ts <= previous[0]:
            ts = previous[0] + rng.randint(5, 60) * _MINUTE
        rows.add(ts, name, value)
    rows.rows.sort(key=lambda row: row[0])
    return [
        GenFieldChange(deal_id, datetime.fromtimestamp(ts, UTC), name, value) for ts, name, value in rows.rows
    ]


def _stages(
    rng: random.Random,
    rows: _Rows,
    story: Story,
    pipeline: GenPipeline,
    stage: GenStage,
    created_ts: int,
    stage_ts: int,
    talks: list[int],
) -> None:
    open_stages = [s for s in pipeline.stages if not s.is_closed and s.id != "nurture"]
    first = open_stages[0]
    rows.add(created_ts, "stage", first.id)
    if stage.is_closed:
        target = stage_for_level(pipeline, story.pre_close_level or rng.choice(("mid", "late")), rng)
        if target.id == "nurture":
            target = open_stages[min(1, len(open_stages) - 1)]
    elif stage.id == "nurture":
        target = open_stages[min(1, len(open_stages) - 1)] if rng.random() < 0.5 else first
    else:
        target = stage
    path = [s for s in open_stages if first.display_order < s.display_order <= target.display_order]
    path = [s for s in path if s is target or rng.random() < 0.7]
    window = [ts for ts in talks if created_ts < ts < stage_ts]
    if len(window) >= len(path):
        moves = sorted(rng.sample(window, len(path)))
    else:
        moves = _spaced(created_ts, stage_ts, len(path))
    if not stage.is_closed and stage.id != "nurture" and path:
        moves[-1] = stage_ts  # the deal entered its current stage then
    for ts, step in zip(moves, path, strict=True):
        rows.add(ts if ts == stage_ts else ts + rng.randint(5, 45) * _MINUTE, "stage", step.id)
    if stage.is_closed or stage.id == "nurture":
        rows.add(stage_ts, "stage", stage.id)


def _spaced(start: int, end: int, count: int) -> list[int]:
    if count <= 0:
        return []
    span = max(1, end - start)
    return [start + span * (n + 1) // (count + 1) for n in range(count)]


def _owner(rng: random.Random, rows: _Rows, owner_id: int, owners: int, created_ts: int, now_ts: int) -> None:
    if owners > 1 and rng.random() < 0.06:
        other = rng.choice([o for o in range(1, owners + 1) if o != owner_id])
        rows.add(created_ts, "owner", other)
        rows.add(created_ts + int(rng.random() * max(1, now_ts - created_ts) * 0.8), "owner", owner_id)
    else:
        rows.add(created_ts, "owner", owner_id)


def _close_dates(rng: random.Random, rows: _Rows, created_ts: int, talks: list[int]) -> None:
    current = _day(created_ts) + timedelta(days=rng.randint(45, 120))
    rows.add(created_ts, "close_date", current)
    for ts in talks:
        if current <= _day(ts) + timedelta(days=7):
            current = _day(ts) + timedelta(days=rng.randint(30, 60))
            rows.add(ts + rng.randint(5, 45) * _MINUTE, "close_date", current)
