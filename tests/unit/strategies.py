"""Hypothesis strategies for deals as a CRM could present them, and a few policies to judge them by."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import strategies as st

from policies.model import (
    Activity,
    ActivityKind,
    Agreement,
    AutoTask,
    Channel,
    Contact,
    ContactRole,
    Deal,
    Direction,
    FollowupState,
    NextStep,
    Outcome,
    Owner,
    Readiness,
    TaskType,
    WorkingHours,
)
from policies.policy import Policy
from tests.unit.builders import BASE_POLICY, NOW, policy, stage

RULES = ("agreed_interval", "next_step", "qualification", "decision_maker", "nurture")
STAGE_IDS = (
    "appointmentscheduled",
    "qualifiedtobuy",
    "negotiation",
    "contractsent",
    "closedwon",
    "closedlost",
)
WHATS = (
    None,
    "",
    "follow up",
    "Nachfassen",
    "återkomma",
    "check in next week",
    "Send the revised offer with 3-year pricing",
    "Workshop with IT on the SSO integration",
)


def _policies() -> list[Policy]:
    berlin = BASE_POLICY.replace(
        "time_zone: UTC", "time_zone: Europe/Berlin\n  holidays: {country: DE, subdivision: BY}"
    )
    return [
        policy(),
        policy("", berlin),
        policy(
            """
overrides:
  - name: move on signal
    when: {amount: {min: 20000}}
    rules:
      signals: {on_signal: move}
      next_step: {escalate: stop, grace: 2 business days}
      stop: {qualified_deals: nurture, max_in_stage: 60d}
      nurture: {move_stage: false}
      agreed_interval: {default_cadence: 36h}
""",
        ),
    ]


POLICIES = _policies()

moments = st.integers(min_value=0, max_value=240 * 24).map(lambda h: NOW - timedelta(hours=h))


@st.composite
def activities(draw: st.DrawFn, contact_ids: tuple[str, ...]) -> tuple[Activity, ...]:
    count = draw(st.integers(0, 14))
    items = []
    for i in range(count):
        items.append(
            Activity(
                f"a{i}",
                draw(st.sampled_from(ActivityKind)),
                draw(st.sampled_from(Direction)),
                draw(moments),
                draw(st.sampled_from(Outcome)),
                draw(st.sampled_from([(), *((c,) for c in contact_ids)])),
            )
        )
    return tuple(sorted(items, key=lambda a: a.occurred_at))


@st.composite
def auto_tasks(draw: st.DrawFn) -> tuple[AutoTask, ...]:
    tasks = []
    for i, rule in enumerate(draw(st.lists(st.sampled_from(RULES), max_size=4))):
        created = draw(moments)
        due = created + timedelta(hours=draw(st.integers(0, 24 * 20)))
        tasks.append(
            AutoTask(
                f"t{i}",
                f"cf-{i:020d}",
                rule,
                created,
                due,
                is_open=draw(st.booleans()),
                task_type=TaskType.CALL,
            )
        )
    # The engine's own invariant on its input: at most one open task per rule.
    seen: set[str] = set()
    kept = []
    for task in tasks:
        if task.is_open and task.rule_id in seen:
            continue
        seen.add(task.rule_id) if task.is_open else None
        kept.append(task)
    return tuple(kept)


@st.composite
def deals(draw: st.DrawFn) -> Deal:
    contact_ids = tuple(f"c{i}" for i in range(draw(st.integers(0, 3))))
    contacts = tuple(
        Contact(
            cid, f"Person {cid}", roles=frozenset(draw(st.sets(st.sampled_from(ContactRole), max_size=2)))
        )
        for cid in contact_ids
    )
    created = draw(moments) - timedelta(days=30)
    state = draw(st.sampled_from([FollowupState.ACTIVE] * 3 + [FollowupState.NURTURE, FollowupState.STOPPED]))
    since = draw(st.none() | moments)
    when = draw(st.none() | st.integers(-30, 30).map(lambda d: date(2026, 3, 4) + timedelta(days=d)))
    return Deal(
        id=draw(st.sampled_from(["d1", "d2", "deal-x"])),
        name="Deal",
        pipeline_id="default",
        stage=stage(draw(st.sampled_from(STAGE_IDS))),
        created_at=created,
        modified_at=created,
        owner_id="o1",
        stage_entered_at=draw(st.none() | moments),
        amount=draw(st.none() | st.sampled_from([500.0, 15_000.0, 45_000.0, 250_000.0])),
        currency="EUR",
        close_date=draw(st.none() | st.integers(-90, 60).map(lambda d: date(2026, 3, 4) + timedelta(days=d))),
        next_step=NextStep(
            draw(st.sampled_from(WHATS)), draw(st.sampled_from([None, "", "Budget round"])), when
        ),
        agreement=Agreement(draw(st.none() | st.integers(1, 30)), draw(st.none() | st.sampled_from(Channel))),
        qualification_score=draw(st.none() | st.sampled_from([10.0, 49.0, 50.0, 90.0])),
        readiness=draw(st.sampled_from(Readiness)),
        followup_state=state,
        followup_state_since=since,
        contacts=contacts,
        activities=draw(activities(contact_ids)),
        auto_tasks=draw(auto_tasks()),
    )


owners = st.sampled_from(
    [
        None,
        Owner("o1", "Alex", time_zone="America/New_York"),
        Owner(
            "o1", "Alex", time_zone="Asia/Tokyo", working_hours=WorkingHours(days=frozenset({6, 0, 1, 2, 3}))
        ),
    ]
)
nows = st.integers(0, 24 * 14).map(lambda h: NOW + timedelta(hours=h) + timedelta(minutes=7))
policies = st.sampled_from(POLICIES)

__all__ = ["UTC", "datetime", "deals", "nows", "owners", "policies"]
