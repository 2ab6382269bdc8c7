"""Deal histories: reconstruction at a moment (``deal_as_of``), the snapshot format, the policy's overlay."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from policies.codec import Snapshot, snapshot_from_json, snapshot_to_json
from policies.history import (
    ContactChange,
    DealHistory,
    DealTimeline,
    FieldChange,
    SnapshotHistory,
    _from_us,
    deal_as_of,
    history_problems,
    micros,
    timelines,
)
from policies.model import (
    Activity,
    ActivityKind,
    Channel,
    Contact,
    ContactRole,
    Direction,
    FollowupState,
    Outcome,
    Pipeline,
    Readiness,
)
from tests.unit.builders import contact, deal, stage
from tests.unit.history_strategies import PIPELINES as PIPELINES_FOR_WORLDS
from tests.unit.history_strategies import World, worlds

PIPELINES = (
    Pipeline("default", "Sales", tuple(stage(s) for s in ("qualifiedtobuy", "negotiation", "closedwon"))),
)
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _timeline(
    history: DealHistory,
    *,
    activities: tuple[Activity, ...] = (),
    contacts: tuple[Contact, ...] | None = None,
    score: float | None = 80,
) -> DealTimeline:
    found = deal(
        "d1", stage_id="closedwon", created=T0, activities=activities, contacts=contacts, score=score
    )
    [line], _ = timelines([found], PIPELINES, SnapshotHistory({"d1": history}))
    return line


def test_fields_hold_their_latest_change_and_are_empty_before_their_first() -> None:
    """Stage from its first record; amount empty until set; unrecorded fields keep the current value."""
    line = _timeline(
        DealHistory(
            (
                FieldChange(T0, "stage", "qualifiedtobuy"),
                FieldChange(T0 + timedelta(days=3), "amount", 5000),
                FieldChange(T0 + timedelta(days=10), "stage", "negotiation"),
                FieldChange(T0 + timedelta(days=10), "amount", "12500.5"),
                FieldChange(T0 + timedelta(days=20), "stage", "closedwon"),
                FieldChange(T0 + timedelta(days=2), "next_step_date", "2026-02-01"),
                FieldChange(T0 + timedelta(days=2), "agreed_interval_days", 14.0),
                FieldChange(T0 + timedelta(days=2), "agreed_channel", "email"),
                FieldChange(T0 + timedelta(days=1), "readiness", "not_now"),
                FieldChange(T0 + timedelta(days=1), "budget_approved", True),
            )
        ),
        score=70,
    )
    start = deal_as_of(line, T0)
    assert (start.stage.id, start.amount, start.stage_entered_at) == ("qualifiedtobuy", None, T0)
    assert start.qualification_score == 70  # no recorded change: the current value throughout
    assert "budget_approved" not in start.fields
    middle = deal_as_of(line, T0 + timedelta(days=12))
    assert (middle.stage.id, middle.amount) == ("negotiation", 12_500.5)
    assert middle.stage_entered_at == T0 + timedelta(days=10)
    assert middle.next_step.when == date(2026, 2, 1)
    assert (middle.agreement.interval_days, middle.agreement.channel) == (14, Channel.EMAIL)
    assert middle.readiness is Readiness.NOT_NOW
    assert middle.fields["budget_approved"] is True
    assert not middle.is_closed
    end = deal_as_of(line, T0 + timedelta(days=30))
    assert end.stage.is_won
    assert end.modified_at == T0 + timedelta(days=20)


def test_activities_show_when_logged_and_a_booked_meeting_as_scheduled_until_it_is_held() -> None:
    """A call logged a day late is invisible until then; a meeting booked ahead shows as scheduled."""
    call = Activity(
        "call:1", ActivityKind.CALL, Direction.OUTBOUND, T0 + timedelta(days=1), Outcome.CONNECTED
    )
    meeting = Activity(
        "meeting:2", ActivityKind.MEETING, Direction.OUTBOUND, T0 + timedelta(days=6), Outcome.COMPLETED
    )
    line = _timeline(
        DealHistory(logged_at={"call:1": T0 + timedelta(days=2), "meeting:2": T0 + timedelta(days=3)}),
        activities=(call, meeting),
    )
    assert deal_as_of(line, T0 + timedelta(days=1, hours=1)).activities == ()
    [seen] = deal_as_of(line, T0 + timedelta(days=2, hours=1)).activities
    assert seen == call
    booked = deal_as_of(line, T0 + timedelta(days=4)).activities[-1]
    assert (booked.id, booked.outcome) == ("meeting:2", Outcome.SCHEDULED)
    assert deal_as_of(line, T0 + timedelta(days=7)).activities[-1] == meeting
    assert T0 + timedelta(days=6) in line.event_times  # the outcome shows: an event of the deal


def test_contacts_join_at_their_first_change_with_the_roles_it_gives() -> None:
    contacts = (contact("c1", ContactRole.CHAMPION), contact("c2", ContactRole.GATEKEEPER))
    line = _timeline(
        DealHistory(
            contacts=(
                ContactChange(T0 + timedelta(days=4), "c2"),
                ContactChange(T0 + timedelta(days=9), "c2", (ContactRole.DECISION_MAKER,)),
            )
        ),
        contacts=contacts,
    )
    assert [c.id for c in deal_as_of(line, T0 + timedelta(days=1)).contacts] == ["c1"]
    later = deal_as_of(line, T0 + timedelta(days=5)).contacts
    assert [(c.id, c.roles) for c in later] == [
        ("c1", frozenset({ContactRole.CHAMPION})),
        ("c2", frozenset({ContactRole.GATEKEEPER})),
    ]
    assert deal_as_of(line, T0 + timedelta(days=10)).contacts[1].roles == frozenset(
        {ContactRole.DECISION_MAKER}
    )


def test_the_policys_own_writes_hold_until_a_rep_changes_the_same_field_later() -> None:
    """The overlay wins over older recorded values and loses to newer ones; own fields start fresh."""
    line = _timeline(
        DealHistory(
            (
                FieldChange(T0, "stage", "qualifiedtobuy"),
                FieldChange(T0 + timedelta(days=8), "stage", "negotiation"),
                FieldChange(T0, "followup_state", "stopped"),  # crm-followup ran before: ignored
            )
        )
    )
    overlay = {
        "stage": (T0 + timedelta(days=5), "closedwon"),
        "followup_state": (T0 + timedelta(days=5), "nurture"),
    }
    fresh = line.as_of(T0 + timedelta(days=1), own_fields=False)
    assert fresh.followup_state is FollowupState.ACTIVE
    parked = line.as_of(T0 + timedelta(days=6), overlay=overlay, own_fields=False)
    assert (parked.stage.id, parked.followup_state) == ("closedwon", FollowupState.NURTURE)
    assert parked.stage_entered_at == T0 + timedelta(days=5)
    moved = line.as_of(T0 + timedelta(days=9), overlay=overlay, own_fields=False)
    assert (moved.stage.id, moved.followup_state) == ("negotiation", FollowupState.NURTURE)
    assert moved.stage_entered_at == T0 + timedelta(days=8)


def test_a_snapshot_with_history_round_trips_and_one_without_is_written_as_before() -> None:
    found = deal("d1")
    history = SnapshotHistory(
        {"d1": DealHistory((FieldChange(T0, "close_date", "2026-03-31"),), (ContactChange(T0, "c1"),))},
        since=T0 - timedelta(days=365),
        untracked=("next_step_why",),
    )
    snapshot = Snapshot("salesforce", (), PIPELINES, (found,), T0, history)
    again = snapshot_from_json(snapshot_to_json(snapshot))
    assert again == snapshot
    assert again.history is not None
    assert again.history.deals["d1"].changes[0].value == date(2026, 3, 31)
    plain = snapshot_to_json(Snapshot("hubspot", (), PIPELINES, (found,), T0))
    assert b'"history"' not in plain
    assert snapshot_from_json(plain).history is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ('{"at": "2026-01-05T09:00:00Z", "field": "close_date", "value": "soon"}', "expected a date"),
        ('{"at": "2026-01-05T09:00:00Z", "field": "amount", "value": "lots"}', "expected a number"),
        ('{"at": "2026-01-05T09:00:00Z", "field": "readiness", "value": "maybe"}', "expected one of ready"),
        ('{"at": "2026-01-05T09:00:00Z", "field": "stage", "value": ""}', "must not be empty"),
        ('{"at": "2026-01-05T09:00:00", "field": "amount", "value": 1}', "a time zone is needed"),
        ('{"at": "2026-01-05T09:00:00Z", "field": "agreed_interval_days", "value": 2.5}', "whole number"),
    ],
)
def test_bad_history_values_are_errors_at_their_path(change: str, message: str) -> None:
    text = (
        '{"crm": "hubspot", "deals": [], "history": {"deals": {"d1": {"changes": ['
        '{"at": "2026-01-05T08:00:00Z", "field": "stage", "value": "x"}, ' + change + "]}}}}"
    )
    with pytest.raises(ValidationError) as caught:
        snapshot_from_json(text)
    [error] = caught.value.errors()
    assert error["loc"] == ("history", "deals", "d1", "changes", 1)
    assert message in error["msg"]


def test_histories_of_deals_the_snapshot_does_not_have_are_problems() -> None:
    history = SnapshotHistory({"d1": DealHistory(), "ghost": DealHistory()})
    assert list(history_problems([deal("d1")], history)) == [
        (("history", "deals", "ghost"), "no deal 'ghost' in the snapshot's deals")
    ]


@given(
    st.datetimes(
        min_value=datetime(1700, 1, 2),
        max_value=datetime(4000, 12, 30),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
        ),
    )
)
def test_a_moment_kept_compactly_comes_back_as_the_same_moment(moment: datetime) -> None:
    """Timelines keep moments as microseconds since the epoch: every moment the bounds allow comes back."""
    assert _from_us(micros(moment)) == moment


@given(worlds())
@settings(max_examples=40, deadline=None)
def test_a_timeline_gives_back_the_activities_and_changes_it_was_made_of(world: World) -> None:
    """Compact storage loses nothing: the deal's activities, each field's changes, its event times."""
    lines, _ = timelines(world.deals, PIPELINES_FOR_WORLDS, world.history)
    for deal_, line in zip(world.deals, lines, strict=True):
        assert line.activities() == deal_.activities
        assert line.deal.activities == ()
        history = world.history.deals.get(deal_.id)
        changes = history.changes if history is not None else ()
        for name in {c.field for c in changes}:
            expected = [(c.at, c.value) for c in sorted(changes, key=lambda c: c.at) if c.field == name]
            assert line.value_changes(name) == expected
        assert line.event_times[0] <= deal_.created_at
