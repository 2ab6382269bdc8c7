"""The engine never overflows: dates at the ends of Python's calendar and absurd intervals still plan.

The connectors reject such values (tests/connectors/test_mapping_bounds.py), but a snapshot or an old
mirror row can still carry one; the engine's date arithmetic stops at a horizon (``policies.bounds``).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.bounds import HORIZON, MAX_INTERVAL_DAYS
from policies.calendar import BusinessCalendar
from policies.durations import Duration, days
from policies.engine import evaluate
from policies.model import Agreement, Deal, NextStep, Owner
from policies.planner import plan
from policies.policy import Policy
from tests.unit.builders import NOW, deal, policy
from tests.unit.strategies import deals, nows, owners, policies

EDGE_MOMENTS = st.one_of(
    st.sampled_from(
        [
            datetime(9999, 12, 31, 23, tzinfo=UTC),
            datetime(9999, 12, 20, tzinfo=UTC),
            datetime(1, 1, 1, tzinfo=UTC),
            datetime(1, 1, 3, tzinfo=UTC),
        ]
    ),
    st.datetimes(min_value=datetime(9990, 1, 1), timezones=st.just(UTC)),
    st.datetimes(max_value=datetime(2, 1, 1), timezones=st.just(UTC)),
)
EDGE_DATES = st.one_of(
    st.dates(min_value=date(9990, 1, 1)),
    st.dates(max_value=date(1, 2, 1)),
    st.sampled_from([date.max, date.min]),
)


@st.composite
def extreme_deals(draw: st.DrawFn) -> Deal:
    """A deal of the usual strategy with one or more values at the ends of what the types allow."""
    d = draw(deals())
    edged = d
    if draw(st.booleans()):
        agreement = Agreement(draw(st.integers(-(10**12), 10**12)), d.agreement.channel)
        edged = dataclasses.replace(edged, agreement=agreement)
    if draw(st.booleans()):
        edged = dataclasses.replace(edged, created_at=draw(EDGE_MOMENTS))
    if draw(st.booleans()):
        edged = dataclasses.replace(edged, close_date=draw(EDGE_DATES))
    if draw(st.booleans()):
        edged = dataclasses.replace(edged, next_step=dataclasses.replace(d.next_step, when=draw(EDGE_DATES)))
    if draw(st.booleans()):
        edged = dataclasses.replace(
            edged, stage_entered_at=draw(EDGE_MOMENTS), followup_state_since=draw(EDGE_MOMENTS)
        )
    if draw(st.booleans()):
        edged = dataclasses.replace(edged, amount=draw(st.floats()), qualification_score=draw(st.floats()))
    if len(d.activities) > 0 and draw(st.booleans()):
        activities = tuple(dataclasses.replace(a, occurred_at=draw(EDGE_MOMENTS)) for a in d.activities)
        edged = dataclasses.replace(edged, activities=activities)
    if len(d.auto_tasks) > 0 and draw(st.booleans()):
        auto_tasks = tuple(
            dataclasses.replace(t, due_at=draw(EDGE_MOMENTS), created_at=draw(EDGE_MOMENTS))
            for t in d.auto_tasks
        )
        edged = dataclasses.replace(edged, auto_tasks=auto_tasks)
    return edged


@pytest.mark.slow  # 400 examples of whole plans: ~15 s
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies, extreme_deals(), nows, owners)
def test_planning_never_raises_on_extreme_values(
    policy_: Policy, d: Deal, now: datetime, owner: Owner | None
) -> None:
    """Whatever the dates and numbers, planning gives a plan; every due date it sets is before the horizon."""
    result = plan(policy_, [d], now, {"o1": owner} if owner else {})
    for action in result.actions:
        due = getattr(action, "due_at", None)
        assert due is None or due <= HORIZON


def test_an_agreed_interval_of_a_billion_days_is_capped_not_an_overflow() -> None:
    """10^9 days is read as the longest interval there is: not due for ten years, and said so."""
    far = dataclasses.replace(deal(), agreement=Agreement(1_000_000_000))
    decision = evaluate(policy(), far, NOW)
    verdict = next(v for v in decision.verdicts if v.rule_id == "agreed_interval")
    assert (
        f"agreed interval of {MAX_INTERVAL_DAYS} days"
        in {e.label: e.value for e in verdict.evidence}["basis"]
    )


def test_calendar_arithmetic_stops_at_the_horizon() -> None:
    """Shifts past Python's calendar end at the horizon; moments at its ends are read on the UTC clock."""
    calendar = BusinessCalendar("America/New_York")
    end = datetime(9999, 12, 31, 22, tzinfo=UTC)
    assert calendar.shift(end, days(30)) == HORIZON
    assert calendar.shift(NOW, Duration(9999, "weeks")) < HORIZON
    assert calendar.shift(end, Duration(5, "business_days")) == HORIZON
    assert calendar.due_after(end, days(1)) == HORIZON
    assert calendar.local_day_name(end) == "9999-12-31"
    assert calendar.local_day_name(datetime(1, 1, 1, 1, tzinfo=UTC)) == "0001-01-01"
    assert calendar.working_moment(datetime(1, 1, 1, tzinfo=UTC)).year == 1


def test_a_next_step_dated_in_the_year_9999_is_simply_far_ahead() -> None:
    """A next-step date at the calendar's end counts as a future date, not as an error."""
    far = dataclasses.replace(
        deal(), next_step=NextStep("Send the pricing proposal for 50 seats", "budget round", date.max)
    )
    evaluate(policy(), far, NOW)
