"""Follow-up discipline as it really happened, from the history alone: no policy acts here.

**Agreed-interval compliance.** A conversation (a reply, a connected call, a held or booked meeting: the
engine's *signals*) after which the deal records an agreed interval of N days owes the customer a follow-up
N days later, due where the engine would put it (``BusinessCalendar.due_after``: the next working moment
of the owner's calendar). The agreement is the interval recorded on the deal by the end of the
conversation's day; of several conversations on one day the last one counts. The follow-up is the next
call, e-mail or meeting on the deal in either direction, answered or not. Judged on business days of the
owner's calendar, with a tolerance of ``TOLERANCE`` business day either side of the due day:

    early           before the tolerance window
    on_time         inside it
    late            after it (a 14-day callback made on day 20 is late)
    customer_first  the customer got in touch first, before the window closed
    never           nothing by the end of the history, although the window has closed
    pending         nothing yet and the window is still open at the end of the history

**Next-step completeness.** At each sample moment, the share of open deals whose next step is complete by
the policy's own definition (``lifecycle.next_step_gaps``: a specific what, a why, a date not passed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from policies.calendar import BusinessCalendar
from policies.context import Context
from policies.durations import days
from policies.facts import NO_FACTS, TOUCH
from policies.history import DealTimeline, HistoryField
from policies.lifecycle import next_step_gaps
from policies.model import ActivityKind, DealField, Direction, Owner
from policies.policy import Policy

TOLERANCE = 1  # business days either side of the due day
_FOLLOW_UP_KINDS = frozenset({ActivityKind.CALL, ActivityKind.EMAIL, ActivityKind.MEETING})
_DAY = timedelta(days=1)
VERDICTS = ("early", "on_time", "late", "customer_first", "never", "pending")


@dataclass(frozen=True, slots=True)
class Obligation:
    """One agreed follow-up and what became of it."""

    deal_id: str
    owner_id: str | None
    conversation_at: datetime
    interval_days: int
    due_at: datetime
    verdict: str
    followed_up_at: datetime | None
    days_late: int | None  # business days after the due day, for late follow-ups


def obligations(
    policy: Policy,
    timeline: DealTimeline,
    owners: Mapping[str, Owner],
    start: datetime,
    end: datetime,
    history_end: datetime,
) -> list[Obligation]:
    """The agreed follow-ups owed after conversations in ``[start, end]``, judged up to ``history_end``."""
    deal = timeline.deal
    touches = [a for a in deal.activities if a.kind in _FOLLOW_UP_KINDS and a.occurred_at <= history_end]
    found: list[Obligation] = []
    for position, activity in enumerate(touches):
        if not start <= activity.occurred_at <= end:
            continue
        if TOUCH[activity.kind, activity.direction, activity.outcome] != "signal":
            continue
        owner_id = _owner_at(timeline, activity.occurred_at)
        calendar = policy.calendar_for(owners.get(owner_id or ""))
        day = calendar.local_date(activity.occurred_at)
        later_same_day = any(
            TOUCH[a.kind, a.direction, a.outcome] == "signal" and calendar.local_date(a.occurred_at) == day
            for a in touches[position + 1 :]
            if a.occurred_at > activity.occurred_at
        )
        if later_same_day:
            continue
        end_of_day = datetime.combine(day + _DAY, time(0), calendar.tz).astimezone(UTC) - timedelta(
            microseconds=1
        )
        interval = _interval_at(timeline, min(end_of_day, history_end))
        if not interval:
            continue
        due = calendar.due_after(activity.occurred_at, days(interval))
        due_day = calendar.local_date(due)
        window_start = _business_days_back(calendar, due_day, TOLERANCE)
        window_end = calendar.add_business_days(due_day, TOLERANCE)
        follow = next((a for a in touches[position + 1 :] if a.occurred_at > activity.occurred_at), None)
        followed_at = follow.occurred_at if follow is not None else None
        days_late = None
        if follow is None:
            closes = datetime.combine(window_end + _DAY, time(0), calendar.tz).astimezone(UTC)
            verdict = "never" if closes <= history_end else "pending"
        else:
            follow_day = calendar.local_date(follow.occurred_at)
            if follow_day > window_end:
                verdict = "late"
                days_late = _business_days_between(calendar, due_day, follow_day)
            elif follow.direction is Direction.INBOUND:
                verdict = "customer_first"
            elif follow_day < window_start:
                verdict = "early"
            else:
                verdict = "on_time"
        found.append(
            Obligation(
                deal.id, owner_id, activity.occurred_at, interval, due, verdict, followed_at, days_late
            )
        )
    return found


def _owner_at(timeline: DealTimeline, moment: datetime) -> str | None:
    recorded, value = timeline.value(HistoryField.OWNER, moment)
    owner = value if recorded else timeline.deal.owner_id
    return str(owner) if owner else None


def _interval_at(timeline: DealTimeline, moment: datetime) -> int | None:
    recorded, value = timeline.value(DealField.AGREED_INTERVAL_DAYS, moment)
    interval = value if recorded else timeline.deal.agreement.interval_days
    return interval if isinstance(interval, int) and not isinstance(interval, bool) and interval > 0 else None


def _business_days_back(calendar: BusinessCalendar, day: date, count: int) -> date:
    for _ in range(count):
        day -= _DAY
        while not calendar.is_business_day(day):
            day -= _DAY
    return day


def _business_days_between(calendar: BusinessCalendar, first: date, last: date) -> int:
    count, day = 0, first
    while day < last:
        day += _DAY
        if calendar.is_business_day(day):
            count += 1
    return count


def next_step_complete(
    policy: Policy, timelines: Sequence[DealTimeline], owners: Mapping[str, Owner], moment: datetime
) -> Iterable[tuple[str | None, bool]]:
    """(owner id, complete) for every deal open at ``moment``, by the policy's next-step rule."""
    for timeline in timelines:
        if timeline.deal.created_at > moment:
            continue
        deal = timeline.as_of(moment, light=True)  # fields only: the next step, the scope
        if deal.stage.is_closed:
            continue
        owner = owners.get(deal.owner_id or "")
        compiled = policy.rules_for(deal, owner)
        if not compiled.rules.next_step.enabled:
            continue
        ctx = Context(policy, deal, moment, owner, compiled, policy.calendar_for(owner), NO_FACTS)
        yield deal.owner_id, not next_step_gaps(ctx)
