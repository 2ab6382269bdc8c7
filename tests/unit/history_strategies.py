"""Hypothesis strategies for small pipelines with a history: a few deals over three weeks, sharing owners and
contacts, with the reps' activities and field changes at random moments, and policies to replay them with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from hypothesis import strategies as st

from policies.history import ContactChange, DealHistory, FieldChange, SnapshotHistory
from policies.model import (
    Activity,
    ActivityKind,
    Agreement,
    Contact,
    ContactRole,
    Deal,
    Direction,
    NextStep,
    Outcome,
    Owner,
    Pipeline,
    Readiness,
)
from policies.policy import Policy
from tests.unit.builders import BASE_POLICY, policy, stage

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday
DAYS = 21
FIRST_DAY, LAST_DAY = date(2026, 3, 2), date(2026, 3, 20)
STAGE_IDS = (
    "appointmentscheduled",
    "qualifiedtobuy",
    "negotiation",
    "contractsent",
    "closedwon",
    "closedlost",
)
PIPELINES = (Pipeline("default", "Sales", tuple(stage(s) for s in STAGE_IDS)),)
OWNERS = {
    "o1": Owner("o1", "Alex", time_zone="UTC", team="north"),
    "o2": Owner("o2", "Kim", time_zone="America/New_York", team="south"),
}
CONTACTS = ("c1", "c2", "c3")


def _policies() -> list[Policy]:
    tight = BASE_POLICY.replace(
        "max_new_tasks_per_owner_per_day: 20", "max_new_tasks_per_owner_per_day: 1"
    ).replace("max_touches_per_contact_per_week: 3", "max_touches_per_contact_per_week: 1")
    return [
        policy(),
        policy("", tight),
        policy(
            """
overrides:
  - name: impatient
    when: {amount: {min: 20000}}
    rules:
      signals: {on_signal: move}
      next_step: {escalate: stop, grace: 2 business days}
      stop: {qualified_deals: nurture, max_in_stage: 10d, max_since_inbound: 12d, max_unanswered_touches: 3}
      nurture: {on_not_now: true}
      agreed_interval: {default_cadence: 36h}
      task_expiry: 2d
""",
            tight,
        ),
    ]


POLICIES = dict(zip(("base", "tight budgets", "impatient"), _policies(), strict=True))
policy_names = st.sampled_from(sorted(POLICIES))  # by name: a failing example shows the name, not the policy

# Whole minutes over the three weeks (and a week before), so moments fall between and on the ticks.
moments = st.integers(min_value=-7 * 24 * 60, max_value=DAYS * 24 * 60).map(
    lambda m: START + timedelta(minutes=m)
)

_NEXT_STEPS = st.sampled_from([None, "follow up", "Send the revised offer with 3-year pricing"])
_NEXT_STEP_WHYS = st.sampled_from([None, "Budget round"])
_NEXT_STEP_DATES = st.none() | st.integers(-5, 25).map(lambda d: FIRST_DAY + timedelta(days=d))
_SCORES = st.sampled_from([None, 10.0, 80.0])
_FIELD_VALUES = {
    "stage": st.sampled_from(STAGE_IDS),
    "next_step": _NEXT_STEPS,
    "next_step_why": _NEXT_STEP_WHYS,
    "next_step_date": _NEXT_STEP_DATES,
    "agreed_interval_days": st.none() | st.integers(1, 10),
    "agreed_channel": st.sampled_from([None, "call", "email", "meeting"]),
    "readiness": st.sampled_from([r.value for r in Readiness]),
    "qualification_score": _SCORES,
    "amount": st.sampled_from([5_000.0, 30_000.0, 90_000.0]),
    "owner": st.sampled_from(list(OWNERS)),
}


@st.composite
def field_changes(draw: st.DrawFn) -> tuple[FieldChange, ...]:
    names = draw(st.lists(st.sampled_from(sorted(_FIELD_VALUES)), max_size=6))
    return tuple(FieldChange(draw(moments), name, draw(_FIELD_VALUES[name])) for name in names)


@st.composite
def activity_lists(draw: st.DrawFn, prefix: str, contact_ids: tuple[str, ...]) -> tuple[Activity, ...]:
    items = []
    for i in range(draw(st.integers(0, 10))):
        kind = draw(
            st.sampled_from([ActivityKind.CALL, ActivityKind.EMAIL, ActivityKind.MEETING, ActivityKind.NOTE])
        )
        direction = draw(st.sampled_from([Direction.OUTBOUND, Direction.OUTBOUND, Direction.INBOUND]))
        outcome = draw(
            st.sampled_from(
                [
                    Outcome.NO_ANSWER,
                    Outcome.SENT,
                    Outcome.REPLIED,
                    Outcome.CONNECTED,
                    Outcome.SCHEDULED,
                    Outcome.COMPLETED,
                    Outcome.NO_SHOW,
                ]
            )
        )
        items.append(
            Activity(
                f"{prefix}a{i}",
                kind,
                direction,
                draw(moments),
                outcome,
                (draw(st.sampled_from(contact_ids)),),
            )
        )
    return tuple(sorted(items, key=lambda a: a.occurred_at))


@dataclass(frozen=True)
class World:
    deals: tuple[Deal, ...]
    history: SnapshotHistory


@st.composite
def worlds(draw: st.DrawFn) -> World:
    deals: list[Deal] = []
    histories: dict[str, DealHistory] = {}
    for n in range(draw(st.integers(1, 4))):
        deal_id = f"d{n}"
        contact_ids = tuple(draw(st.lists(st.sampled_from(CONTACTS), min_size=1, max_size=2, unique=True)))
        contacts = tuple(
            Contact(
                c,
                f"Person {c}",
                roles=frozenset(draw(st.sets(st.sampled_from(ContactRole), max_size=1))),
                is_primary=i == 0,
            )
            for i, c in enumerate(contact_ids)
        )
        created = draw(moments) - timedelta(days=3)
        activities = draw(activity_lists(deal_id, contact_ids))
        deal = Deal(
            id=deal_id,
            name=f"Deal {deal_id}",
            pipeline_id="default",
            stage=stage(draw(st.sampled_from(STAGE_IDS))),
            created_at=created,
            modified_at=created,
            owner_id=draw(st.sampled_from(list(OWNERS))),
            stage_entered_at=created,
            amount=draw(st.sampled_from([None, 5_000.0, 30_000.0, 90_000.0])),
            currency="EUR",
            close_date=draw(st.none() | st.integers(-10, 30).map(lambda d: FIRST_DAY + timedelta(days=d))),
            next_step=NextStep(draw(_NEXT_STEPS), draw(_NEXT_STEP_WHYS), draw(_NEXT_STEP_DATES)),
            agreement=Agreement(draw(st.none() | st.integers(1, 10)), None),
            qualification_score=draw(_SCORES),
            readiness=draw(st.sampled_from(Readiness)),
            contacts=contacts,
            activities=activities,
        )
        meetings = [a for a in activities if a.kind is ActivityKind.MEETING]
        logged = {}
        for meeting in meetings:
            ahead = draw(st.integers(-2, 6))
            if ahead:
                logged[meeting.id] = meeting.occurred_at - timedelta(days=ahead)
        contact_changes = tuple(
            ContactChange(draw(moments), c.id, draw(st.none() | st.just((ContactRole.DECISION_MAKER,))))
            for c in contacts[1:]
            if draw(st.booleans())
        )
        histories[deal_id] = DealHistory(draw(field_changes()), contact_changes, logged)
        deals.append(deal)
    return World(tuple(deals), SnapshotHistory(histories))


steps = st.sampled_from([timedelta(hours=2), timedelta(hours=3)])
