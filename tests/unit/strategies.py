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
    CloseReason,
    Contact,
    ContactRole,
    Deal,
    Direction,
    FollowupState,
    NextStep,
    Outcome,
    Owner,
    Readiness,
    TaskItem,
    TaskType,
    WorkingHours,
)
from policies.policy import Policy
from tests.unit.builders import BASE_POLICY, NOW, policy, stage

RULES = ("agreed_interval", "next_step", "qualification", "decision_maker", "nurture")
COMBINABLE = ("agreed_interval", "next_step", "decision_maker", "nurture")
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
        policy("tasks: {combine: false}\n"),
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
    if draw(st.booleans()):
        tasks.append(draw(combined_task(len(tasks))))
    # The engine's own invariant on its input: at most one open task (or open item) per rule.
    seen: set[str] = set()
    kept = []
    for task in tasks:
        rules = {i.rule_id for i in task.items if i.closed is None} if task.items else {task.rule_id}
        if task.is_open and rules & seen:
            continue
        seen.update(rules) if task.is_open else None
        kept.append(task)
    return tuple(kept)


@st.composite
def combined_task(draw: st.DrawFn, index: int) -> AutoTask:
    """A combined task (``tasks.combine``) as the CRM keeps it: a checklist with open and closed items."""
    created = draw(moments)
    items = []
    rules = draw(st.lists(st.sampled_from(COMBINABLE), min_size=1, max_size=3, unique=True))
    for j, rule in enumerate(rules):
        added = created + timedelta(hours=draw(st.integers(0, 24 * 5)))
        closed = draw(st.none() | st.sampled_from(CloseReason))
        items.append(
            TaskItem(
                rule,
                f"cf-{100 + j:020d}",
                added,
                added + timedelta(hours=draw(st.integers(0, 48))),
                closed,
                added.date() + timedelta(days=1) if closed else None,
            )
        )
    due = min(i.due_at for i in items)
    return AutoTask(
        f"t{index}",
        items[0].key,
        "conversation" if len(items) > 1 else items[0].rule_id,
        created,
        due,
        is_open=draw(st.booleans()),
        task_type=TaskType.CALL,
        items=tuple(items),
    )


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
