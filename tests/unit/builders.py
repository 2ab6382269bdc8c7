"""Frozen builders for engine tests: deals, activities and small policies, with sensible defaults."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from textwrap import dedent

from policies.loader import policy_from_text
from policies.model import (
    Activity,
    ActivityKind,
    Agreement,
    Channel,
    Contact,
    ContactRole,
    Deal,
    Direction,
    NextStep,
    Outcome,
    Owner,
    Readiness,
    Stage,
)
from policies.policy import Policy

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)  # a Wednesday

_STAGES = {
    s.id: s
    for s in (
        Stage("appointmentscheduled", "Appointment Scheduled", "default", 0, probability=0.2),
        Stage("qualifiedtobuy", "Qualified To Buy", "default", 1, probability=0.4),
        Stage("presentationscheduled", "Presentation Scheduled", "default", 2, probability=0.6),
        Stage("decisionmakerboughtin", "Decision Maker Bought-In", "default", 3, probability=0.8),
        Stage("contractsent", "Contract Sent", "default", 4, probability=0.9),
        Stage("negotiation", "Negotiation", "default", 4, probability=0.85),
        Stage("closedwon", "Closed Won", "default", 5, True, True, 1.0),
        Stage("closedlost", "Closed Lost", "default", 6, True, False, 0.0),
    )
}

GOOD_STEP = NextStep(
    "Send the pricing proposal for 50 seats", "They need it for the budget round", date(2026, 3, 20)
)

BASE_POLICY = """
calendar:
  time_zone: UTC
stages:
  default: {lost: closedlost}
defaults:
  stop:
    max_unanswered_touches: 6
    max_since_inbound: 365d
    close_date_overdue: null
  nurture:
    enabled: true
    list: Nurture
  qualification:
    min_score: 50
    stop_after: 60d
  decision_maker:
    stages: [negotiation, contractsent]
    min_amount: 40000
budgets:
  max_new_tasks_per_owner_per_day: 20
  max_touches_per_contact_per_week: 3
"""


def policy(extra: str = "", base: str = BASE_POLICY) -> Policy:
    """The base test policy, with ``extra`` YAML sections appended (they must not repeat a section)."""
    return policy_from_text(dedent(base) + dedent(extra), "test.yaml")


def stage(stage_id: str) -> Stage:
    return _STAGES[stage_id]


def contact(contact_id: str = "c1", *roles: ContactRole, name: str = "Kim Buyer") -> Contact:
    return Contact(
        contact_id, name, f"{contact_id}@example.com", frozenset(roles), is_primary=contact_id == "c1"
    )


def activity(
    activity_id: str,
    kind: ActivityKind,
    direction: Direction,
    when: datetime,
    outcome: Outcome,
    contacts: tuple[str, ...] = ("c1",),
) -> Activity:
    return Activity(activity_id, kind, direction, when, outcome, contacts)


def call(activity_id: str, when: datetime, outcome: Outcome = Outcome.NO_ANSWER) -> Activity:
    return activity(activity_id, ActivityKind.CALL, Direction.OUTBOUND, when, outcome)


def email_out(activity_id: str, when: datetime) -> Activity:
    return activity(activity_id, ActivityKind.EMAIL, Direction.OUTBOUND, when, Outcome.SENT)


def reply(activity_id: str, when: datetime, contact_id: str = "c1") -> Activity:
    return activity(activity_id, ActivityKind.EMAIL, Direction.INBOUND, when, Outcome.REPLIED, (contact_id,))


def deal(
    deal_id: str = "d1",
    *,
    stage_id: str = "qualifiedtobuy",
    amount: float | None = 10_000,
    score: float | None = 80,
    next_step: NextStep = GOOD_STEP,
    activities: tuple[Activity, ...] = (),
    contacts: tuple[Contact, ...] | None = None,
    created: datetime = NOW - timedelta(days=20),
    owner_id: str = "o1",
    interval_days: int | None = None,
    channel: Channel | None = None,
    readiness: Readiness = Readiness.UNKNOWN,
) -> Deal:
    return Deal(
        id=deal_id,
        name=f"Deal {deal_id}",
        pipeline_id="default",
        stage=stage(stage_id),
        created_at=created,
        modified_at=created,
        owner_id=owner_id,
        stage_entered_at=created,
        amount=amount,
        currency="EUR",
        next_step=next_step,
        agreement=Agreement(interval_days, channel),
        qualification_score=score,
        readiness=readiness,
        contacts=contacts if contacts is not None else (contact("c1", ContactRole.DECISION_MAKER),),
        activities=tuple(sorted(activities, key=lambda a: a.occurred_at)),
    )


OWNER = Owner("o1", "Alex Rep", time_zone="UTC")
