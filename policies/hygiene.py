"""Pipeline hygiene of one deal, in the engine's own terms: what ``followup report`` counts per owner.

The report must agree with the policy, so every measure here is the engine's definition, not a second one:

* the next step is judged by ``policies.lifecycle.next_step_gaps`` with the deal's scoped rules (languages,
  filler phrases, ``min_length``, ``require_why``), exactly as the ``next_step`` rule judges it;
* unanswered touches are ``policies.facts.gather_facts`` (across all channels since the last conversation),
  the count the ``stop`` rule compares with ``max_unanswered_touches``;
* an agreed follow-up falls due at ``calendar.due_after(conversation, agreed interval)`` in the owner's
  calendar, the moment the ``agreed_interval`` rule gives its task.

Pure like the rest of ``policies``: ``now`` is an argument.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from policies.context import Context
from policies.durations import days
from policies.facts import NO_FACTS, TOUCH, gather_facts
from policies.lifecycle import next_step_gaps
from policies.model import Activity, ActivityKind, Deal, Direction, Owner
from policies.policy import Policy

StepStatus = Literal["complete", "incomplete", "vague", "missing", "not_required"]
Timeliness = Literal["early", "on_time", "late", "overdue", "not_due"]

_TOUCH_KINDS = frozenset({ActivityKind.CALL, ActivityKind.EMAIL, ActivityKind.MEETING})


@dataclass(frozen=True, slots=True)
class AgreedFollowup:
    """One conversation under an agreed interval, and what became of the follow-up it called for."""

    conversation: Activity
    due: date  # local date in the owner's calendar
    status: Timeliness
    touched_on: date | None  # the first outbound touch after the conversation, if any


@dataclass(frozen=True, slots=True)
class DealHygiene:
    step: StepStatus
    gaps: tuple[str, ...]  # as the next_step rule words them: "what is vague", "why", "when", ...
    unanswered: int
    last_signal_at: datetime | None
    days_in_stage: int
    followups: tuple[AgreedFollowup, ...]  # oldest first; empty without an agreed interval


def assess(
    policy: Policy, deal: Deal, now: datetime, owner: Owner | None = None, *, since: datetime | None = None
) -> DealHygiene:
    """The hygiene of one open deal at ``now``; follow-ups made are judged if due at or after ``since``."""
    compiled = policy.rules_for(deal, owner)
    calendar = policy.calendar_for(owner)
    facts = gather_facts(deal)
    ctx = Context(policy, deal, now, owner, compiled, calendar, NO_FACTS)
    if compiled.rules.next_step.enabled:
        gaps = tuple(next_step_gaps(ctx))
        step: StepStatus = _step_status(gaps)
    else:
        gaps, step = (), "not_required"
    entered = deal.stage_entered_at or deal.created_at
    return DealHygiene(
        step=step,
        gaps=gaps,
        unanswered=facts.unanswered,
        last_signal_at=facts.last_signal_at,
        days_in_stage=max(0, (now - entered).days),
        followups=tuple(_agreed_followups(ctx, since)),
    )


def _step_status(gaps: tuple[str, ...]) -> StepStatus:
    if not gaps:
        return "complete"
    if "what" in gaps:
        return "missing"
    if "what is vague" in gaps:
        return "vague"
    return "incomplete"  # a concrete what, but no why or no future when


def _agreed_followups(ctx: Context, since: datetime | None) -> Iterator[AgreedFollowup]:
    """Each conversation's follow-up under the agreed interval (the deal's agreement as it is now).

    The follow-up is the first outbound call, email or meeting after the conversation; if the customer
    speaks first (another conversation before any outbound touch), no follow-up was owed. The last
    conversation's follow-up, if not made yet, is overdue once its due day has passed. A follow-up made
    whose due day is before ``since`` is not judged (a due moment is never earlier than the conversation
    plus the interval, so older conversations are skipped without working out their due day).
    """
    interval = ctx.deal.agreement.interval_days
    if not interval or interval <= 0:
        return
    calendar, today = ctx.calendar, ctx.today
    span = days(interval)
    # Conversations before this cannot fall due in the period (a day of slack for time zones).
    skip_before = since - timedelta(days=interval + 1) if since is not None else None
    anchor: Activity | None = None
    for activity in ctx.deal.activities:
        if activity.occurred_at > ctx.now:
            break
        touch = TOUCH[activity.kind, activity.direction, activity.outcome]
        outbound = activity.direction is Direction.OUTBOUND and activity.kind in _TOUCH_KINDS
        if anchor is not None and outbound:
            if skip_before is not None and anchor.occurred_at < skip_before:
                anchor = activity if touch == "signal" else None
                continue
            due = calendar.local_date(calendar.due_after(anchor.occurred_at, span))
            made = calendar.local_date(activity.occurred_at)
            status: Timeliness = "early" if made < due else "on_time" if made == due else "late"
            yield AgreedFollowup(anchor, due, status, made)
            anchor = None
        if touch == "signal":
            anchor = activity
    if anchor is not None:
        due = calendar.local_date(calendar.due_after(anchor.occurred_at, span))
        yield AgreedFollowup(anchor, due, "overdue" if due < today else "not_due", None)
