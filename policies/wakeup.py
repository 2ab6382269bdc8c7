"""``next_wakeup(policy, deal, now, owner)``: the earliest moment after ``now`` at which a time-based rule
can act on a deal that nothing else happens to.

The backtest (``policies.replay``) evaluates a deal only when something happened to it or when this says a
time-based rule can fire, instead of at every moment of the period. That is only right if the answer is
never too late, so it is worked out from the same references and the same calendar arithmetic the rules
use (``BusinessCalendar.threshold`` solves ``passed`` for the moment; ``task_rules.followup_target`` is
the follow-up rule's own due date). Too early costs one evaluation that decides nothing; a Hypothesis
property compares the event-driven replay with evaluating every deal at every step.

The contract: for a *settled* deal (its actions at ``now`` applied, so that evaluating it again at ``now``
adds nothing), evaluating the unchanged deal at any moment in ``(now, next_wakeup)`` adds nothing either.
``None``: nothing time-based is left (a closed or stopped deal, a nurtured one without future activity).

The moments, by state:

    closed, stopped   none (reopening is a change to the deal, not a moment)
    nurture           a visible activity dated later than ``now`` (a booked meeting) can be the signal
    active            the stop thresholds (silence, time in stage, close date), the qualification
                      deadline, the next-step date passing and its grace period ending, the follow-up's due
                      moment, each open task's expiry, and a visible activity dated later than ``now``
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from policies.context import Context
from policies.facts import NO_FACTS, gather_facts
from policies.lifecycle import next_step_key
from policies.model import Deal, FollowupState, Owner
from policies.policy import Policy
from policies.task_rules import followup_target

_DAY = timedelta(days=1)


def next_wakeup(policy: Policy, deal: Deal, now: datetime, owner: Owner | None = None) -> datetime | None:
    """See the module docstring."""
    if deal.stage.is_closed or deal.followup_state is FollowupState.STOPPED:
        return None
    moments = _dated_later(deal, now)
    if deal.followup_state is FollowupState.NURTURE:
        return min(moments, default=None)
    ctx = Context.of(policy, deal, now, owner, gather_facts(deal) if deal.activities else NO_FACTS)
    _stop_moments(ctx, moments)
    _qualification_moment(ctx, moments)
    _next_step_moments(ctx, moments)
    _task_moments(ctx, moments)
    later = [m for m in moments if m > now]
    return min(later) if later else None


def _dated_later(deal: Deal, now: datetime) -> list[datetime]:
    """Visible activities dated after ``now`` (booked meetings): in time order, so they are at the end."""
    later: list[datetime] = []
    for activity in reversed(deal.activities):
        if activity.occurred_at <= now:
            break
        later.append(activity.occurred_at)
    return later


def _floor(ctx: Context, moment: datetime) -> datetime:
    since = ctx.deal.followup_state_since
    return since if since is not None and since > moment else moment


def _stop_moments(ctx: Context, moments: list[datetime]) -> None:
    rule = ctx.rules.stop
    if not rule.enabled:
        return
    deal, calendar = ctx.deal, ctx.calendar
    if rule.max_since_inbound is not None:
        reference = _floor(ctx, ctx.facts.last_signal_at or deal.created_at)
        moments.append(calendar.threshold(reference, rule.max_since_inbound))
    if rule.max_in_stage is not None:
        reference = _floor(ctx, deal.stage_entered_at or deal.created_at)
        moments.append(calendar.threshold(reference, rule.max_in_stage))
    if rule.close_date_overdue is not None and deal.close_date is not None:
        reference_day = deal.close_date
        since = deal.followup_state_since
        if since is not None and calendar.local_date(since) > reference_day:
            reference_day = calendar.local_date(since)
        moments.append(calendar.threshold(calendar.opening(reference_day), rule.close_date_overdue))


def _qualification_moment(ctx: Context, moments: list[datetime]) -> None:
    rule = ctx.rules.qualification
    if rule.enabled and rule.stop_after is not None:
        moments.append(ctx.calendar.threshold(_floor(ctx, ctx.deal.created_at), rule.stop_after))


def _next_step_moments(ctx: Context, moments: list[datetime]) -> None:
    rule = ctx.rules.next_step
    if not rule.enabled:
        return
    when = ctx.deal.next_step.when
    if when is not None and when >= ctx.today:
        # The day after ``when`` begins: the date "has passed" and the next step is incomplete.
        local = datetime.combine(when + _DAY, time(0), ctx.calendar.tz)
        moments.append(local.astimezone(UTC))
    if rule.escalate != "none" and ctx.tasks:
        key = next_step_key(ctx)
        asked = [t.created_at for t in ctx.tasks if t.key == key]  # a combined task's items included
        if asked:
            moments.append(ctx.calendar.shift(min(asked), rule.grace))


def _task_moments(ctx: Context, moments: list[datetime]) -> None:
    if ctx.rules.agreed_interval.enabled:
        due = followup_target(ctx)[4]
        moments.append(due)
    expiry = ctx.rules.task_expiry
    if expiry is not None:
        calendar = ctx.calendar
        moments.extend(calendar.threshold(max(t.due_at, t.created_at), expiry) for t in ctx.open_tasks)
