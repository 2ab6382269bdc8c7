"""Table tests, rule by rule: which facts make a rule fire, and what it then decides."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest

from policies.context import Context
from policies.engine import evaluate
from policies.facts import gather_facts
from policies.lifecycle import next_step_gaps, next_step_key
from policies.model import (
    Activity,
    ActivityKind,
    AutoTask,
    ChangeStage,
    Channel,
    CloseReason,
    CloseTask,
    ContactRole,
    CreateTask,
    Deal,
    DealField,
    Direction,
    FollowupState,
    NextStep,
    Outcome,
    SetDealFields,
    TaskType,
    UpdateTask,
    action_kind,
)
from policies.policy import Policy
from tests.unit.builders import NOW, activity, call, contact, deal, email_out, policy, reply

BASE = policy()
DAY = timedelta(days=1)


def scoped(rules: str) -> Policy:
    """The test policy with one override for the default pipeline setting ``rules`` (flow YAML)."""
    return policy(f"overrides:\n  - name: s\n    when: {{pipelines: [default]}}\n    rules: {rules}\n")


def rules_fired(d: Deal, now=NOW, rules=BASE) -> dict[str, bool]:
    return {v.rule_id: v.fired for v in evaluate(rules, d, now).verdicts}


def unanswered(n: int, start: datetime = NOW - 30 * DAY) -> tuple[Activity, ...]:
    return tuple(call(f"u{i}", start + i * DAY) for i in range(n))


# -- (c) stop -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("history", "stops"),
    [
        (unanswered(5), False),
        (unanswered(6), True),
        ((*unanswered(5), reply("r", NOW - 10 * DAY), *unanswered(3, NOW - 9 * DAY)), False),
        ((*unanswered(3), *(email_out(f"e{i}", NOW - (20 - i) * DAY) for i in range(3))), True),
        (
            (
                *unanswered(4),
                activity("m1", ActivityKind.MEETING, Direction.OUTBOUND, NOW - 5 * DAY, Outcome.NO_SHOW),
                activity("m2", ActivityKind.MEETING, Direction.OUTBOUND, NOW - 4 * DAY, Outcome.CANCELLED),
            ),
            True,
        ),
        (
            (
                *unanswered(5),
                activity("n1", ActivityKind.NOTE, Direction.OUTBOUND, NOW - DAY, Outcome.UNKNOWN),
            ),
            False,
        ),
        ((*unanswered(5), call("c", NOW - DAY, Outcome.CONNECTED)), False),
    ],
    ids=[
        "5-calls",
        "6-calls",
        "reply-resets",
        "calls-and-emails",
        "no-shows-count",
        "notes-do-not",
        "connected",
    ],
)
def test_unanswered_touches_count_across_channels_since_the_last_inbound(
    history: tuple[Activity, ...], stops: bool
) -> None:
    """Emails without reply, calls not connected and no-show meetings count; a signal resets the count."""
    decision = evaluate(BASE, deal(activities=history), NOW)
    assert any(isinstance(a, ChangeStage) for a in decision.actions) is stops


def test_silence_longer_than_the_limit_stops_the_deal() -> None:
    """No conversation for more than max_since_inbound (365d in the test policy): closed lost."""
    old = reply("r", NOW - 400 * DAY)
    decision = evaluate(BASE, deal(activities=(old,), created=NOW - 500 * DAY), NOW)
    stage = next(a for a in decision.actions if isinstance(a, ChangeStage))
    assert stage.close_reason == "No contact from the customer for too long"


def test_close_date_long_passed_stops_the_deal() -> None:
    """A close date more than close_date_overdue in the past is a stop criterion."""
    rules = scoped("{stop: {close_date_overdue: 30d}}")
    talk = call("c", NOW - 2 * DAY, Outcome.CONNECTED)
    stale = replace(deal(activities=(talk,)), close_date=date(2026, 1, 2))
    fresh = replace(stale, close_date=date(2026, 2, 20))
    assert rules_fired(stale, rules=rules)["stop"] is True
    assert rules_fired(fresh, rules=rules)["stop"] is False


def test_a_qualified_deal_goes_to_nurture_instead_when_the_policy_says_so() -> None:
    """With qualified_deals: nurture a dead but qualified deal is enrolled, not closed lost."""
    rules = scoped("{stop: {qualified_deals: nurture}}")
    kinds = [action_kind(a) for a in evaluate(rules, deal(activities=unanswered(6)), NOW).actions]
    assert kinds == ["enrol_in_nurture", "set_deal_fields"]
    unqualified = [
        action_kind(a) for a in evaluate(rules, deal(activities=unanswered(6), score=10), NOW).actions
    ]
    assert unqualified == ["change_stage", "set_deal_fields"]


def test_a_pipeline_without_a_lost_stage_is_stopped_in_place() -> None:
    """Without stages.<pipeline>.lost the deal is marked stopped but its stage is left alone."""
    other = replace(deal(activities=unanswered(6)), pipeline_id="partners")
    actions = evaluate(BASE, other, NOW).actions
    assert [action_kind(a) for a in actions] == ["set_deal_fields"]
    fields = actions[0]
    assert isinstance(fields, SetDealFields)
    assert fields.fields[DealField.FOLLOWUP_STATE] == "stopped"


def test_a_person_reopening_a_stopped_deal_makes_it_active_again() -> None:
    """A stopped deal whose stage changed after crm-followup stopped it is active again."""
    stopped = replace(
        deal(activities=(call("c", NOW - DAY, Outcome.CONNECTED),)),
        followup_state=FollowupState.STOPPED,
        followup_state_since=NOW - 10 * DAY,
        stage_entered_at=NOW - 2 * DAY,
    )
    first = evaluate(BASE, stopped, NOW).actions[0]
    assert isinstance(first, SetDealFields)
    assert first.fields[DealField.FOLLOWUP_STATE] == "active"
    untouched = replace(stopped, stage_entered_at=NOW - 20 * DAY)
    assert evaluate(BASE, untouched, NOW).actions == ()


# -- (b) next step --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "gaps"),
    [
        (NextStep("Send the pricing proposal for 50 seats", "Budget round", date(2026, 3, 20)), []),
        (NextStep("follow up", "Budget round", date(2026, 3, 20)), ["what is vague"]),
        (NextStep("Nachfassen nächste Woche", "Budget", date(2026, 3, 20)), ["what is vague"]),
        (NextStep("återkomma", "Budget", date(2026, 3, 20)), ["what is vague"]),
        (NextStep("Check in", "Budget", date(2026, 3, 20)), ["what is vague"]),
        (NextStep("Follow up on the security questionnaire", "IT sign-off", date(2026, 3, 4)), []),
        (NextStep("Send the pricing proposal", None, None), ["why", "when"]),
        (NextStep(None, None, date(2026, 3, 1)), ["what", "why", "when 2026-03-01 has passed"]),
    ],
)
def test_next_step_gaps(step: NextStep, gaps: list[str]) -> None:
    """What, why and a date not in the past; filler phrases in three languages make the what vague."""
    d = deal(next_step=step)
    ctx = Context(BASE, d, NOW, None, BASE.rules_for(d), BASE.calendar_for(None), gather_facts(d))
    assert next_step_gaps(ctx) == gaps


def test_next_step_still_incomplete_after_the_grace_period_escalates() -> None:
    """Asked five business days ago and still incomplete: escalate as configured (here: stop)."""
    rules = scoped("{next_step: {escalate: stop}}")
    d = deal(next_step=NextStep("follow up"), activities=(call("c", NOW - 2 * DAY, Outcome.CONNECTED),))
    ctx = Context(rules, d, NOW, None, rules.rules_for(d), rules.calendar_for(None), gather_facts(d))
    asked = AutoTask("t1", next_step_key(ctx), "next_step", NOW - 8 * DAY, NOW - 8 * DAY)
    assert [action_kind(a) for a in evaluate(rules, replace(d, auto_tasks=(asked,)), NOW).actions] == [
        "close_task",
        "change_stage",
        "set_deal_fields",
    ]
    recent = replace(asked, created_at=NOW - 2 * DAY)
    assert evaluate(rules, replace(d, auto_tasks=(recent,)), NOW).actions == ()


# -- (a, g) follow-up -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "task_type"),
    [(Channel.CALL, TaskType.CALL), (Channel.EMAIL, TaskType.EMAIL), (Channel.MEETING, TaskType.MEETING)],
)
def test_the_agreed_channel_decides_the_task_type(channel: Channel, task_type: TaskType) -> None:
    """A follow-up agreed by email, call or meeting becomes a task of that type."""
    d = deal(activities=(call("c", NOW - 8 * DAY, Outcome.CONNECTED),), interval_days=7, channel=channel)
    (task,) = evaluate(BASE, d, NOW).actions
    assert isinstance(task, CreateTask)
    assert task.task_type is task_type


def test_without_an_agreement_the_cadence_task_asks_for_one() -> None:
    """No agreed interval: the stage cadence applies and the task asks the rep to agree one."""
    d = deal(activities=(call("c", NOW - 8 * DAY, Outcome.CONNECTED),))
    (task,) = evaluate(BASE, d, NOW).actions
    assert isinstance(task, CreateTask)
    assert "agree when and how to talk next" in task.body
    assert task.task_type is TaskType.CALL


def _with_open_followup(on_signal: str) -> tuple[Policy, Deal]:
    rules = scoped(f"{{signals: {{on_signal: {on_signal}}}}}")
    d = deal(activities=(call("c", NOW - 9 * DAY, Outcome.CONNECTED),))
    first = evaluate(rules, d, NOW - DAY)
    d = replace(
        d, auto_tasks=(AutoTask("t1", first.actions[0].key, "agreed_interval", NOW - DAY, NOW - 2 * DAY),)
    )
    return rules, replace(d, activities=(*d.activities, reply("r", NOW - 3600 * timedelta(seconds=1))))


def test_a_reply_closes_the_open_followup() -> None:
    """With on_signal: close a reply closes the open follow-up task as superseded."""
    rules, d = _with_open_followup("close")
    (close,) = evaluate(rules, d, NOW).actions
    assert isinstance(close, CloseTask)
    assert close.reason is CloseReason.SUPERSEDED
    assert close.rule_id == "signals"


def test_a_reply_moves_the_open_followup_when_configured() -> None:
    """With on_signal: move the open follow-up task moves to the new due date instead."""
    rules, d = _with_open_followup("move")
    (move,) = evaluate(rules, d, NOW).actions
    assert isinstance(move, UpdateTask)
    assert move.due_at is not None
    assert move.due_at > NOW


def test_tasks_nobody_acted_on_expire() -> None:
    """An auto-task open 14 days past its due date is closed as expired."""
    talk = call("c", NOW - 2 * DAY, Outcome.CONNECTED)
    stale = AutoTask("t9", "cf-00000000000000000009", "decision_maker", NOW - 30 * DAY, NOW - 20 * DAY)
    decision = evaluate(BASE, replace(deal(activities=(talk,)), auto_tasks=(stale,)), NOW)
    (close,) = decision.actions
    assert isinstance(close, CloseTask)
    assert close.reason is CloseReason.EXPIRED


# -- (e) qualification, (f) decision maker ----------------------------------------------------------


@pytest.mark.parametrize(("score", "qualified"), [(None, False), (49.0, False), (50.0, True), (90.0, True)])
def test_qualification_by_minimum_score(score: float | None, qualified: bool) -> None:
    """A deal is qualified from min_score (50 in the test policy); below it only the qualify task comes."""
    d = deal(score=score, activities=(call("c", NOW - 8 * DAY, Outcome.CONNECTED),))
    rules = {a.rule_id for a in evaluate(BASE, d, NOW).actions}
    assert rules == ({"agreed_interval"} if qualified else {"qualification"})


def test_unqualified_for_too_long_is_stopped() -> None:
    """Unqualified for longer than stop_after (60d): closed lost with the unqualified reason."""
    d = deal(score=None, created=NOW - 61 * DAY, activities=(call("c", NOW - DAY, Outcome.CONNECTED),))
    stage = evaluate(BASE, d, NOW).actions[0]
    assert isinstance(stage, ChangeStage)
    assert stage.close_reason == "Not qualified in time"


@pytest.mark.parametrize(
    ("stage_id", "amount", "roles", "fires"),
    [
        ("negotiation", 10_000, (ContactRole.GATEKEEPER,), True),
        ("qualifiedtobuy", 40_000, (ContactRole.CHAMPION,), True),
        ("qualifiedtobuy", 39_999, (ContactRole.CHAMPION,), False),
        ("negotiation", 90_000, (ContactRole.ECONOMIC_BUYER,), False),
        ("contractsent", 90_000, (ContactRole.DECISION_MAKER, ContactRole.CHAMPION), False),
    ],
)
def test_decision_maker_coverage(
    stage_id: str, amount: float, roles: tuple[ContactRole, ...], fires: bool
) -> None:
    """Late stages or big amounts need a decision maker or economic buyer among the contacts."""
    d = deal(
        stage_id=stage_id,
        amount=amount,
        contacts=(contact("c1", *roles),),
        activities=(call("c", NOW - DAY, Outcome.CONNECTED),),
    )
    assert rules_fired(d)["decision_maker"] is fires


def test_a_reactivation_that_ends_at_once_creates_no_task_to_close_again() -> None:
    """Woken by an old signal but unqualified too long: reactivated and stopped, with no task churn."""
    parked = replace(
        deal(score=None, created=NOW - 200 * DAY, activities=(reply("r", NOW - 70 * DAY),)),
        followup_state=FollowupState.NURTURE,
        followup_state_since=NOW - 100 * DAY,
    )
    actions = evaluate(BASE, parked, NOW).actions
    assert [action_kind(a) for a in actions] == [
        "reactivate_from_nurture",
        "set_deal_fields",
        "change_stage",
        "set_deal_fields",
    ]
    last = actions[-1]
    assert isinstance(last, SetDealFields)
    assert last.fields[DealField.FOLLOWUP_STATE] == "stopped"


# -- facts from the activity history ---------------------------------------------------------------


def test_a_deal_puts_its_activities_in_time_order() -> None:
    """A hand-written history out of order is sorted on construction; equal moments keep their order."""
    late, early = call("late", NOW - DAY), call("early", NOW - 3 * DAY)
    same_a, same_b = call("same-a", NOW - 2 * DAY), email_out("same-b", NOW - 2 * DAY)
    d = deal(activities=(late, same_a, early, same_b))
    assert [a.id for a in d.activities] == ["early", "same-a", "same-b", "late"]


def test_facts_count_the_unanswered_touches_since_the_last_conversation() -> None:
    """Newest first back to the last signal: older unanswered touches no longer count."""
    d = deal(
        activities=(
            call("old-1", NOW - 9 * DAY),
            reply("talked", NOW - 6 * DAY),
            call("new-1", NOW - 4 * DAY),
            email_out("new-2", NOW - 2 * DAY),
        )
    )
    facts = gather_facts(d)
    assert facts.last_signal is not None
    assert facts.last_signal.id == "talked"
    assert (facts.unanswered, facts.unanswered_ids) == (2, ("new-1", "new-2"))
    assert facts.last_attempt is not None
    assert facts.last_attempt.id == "new-2"


def test_a_touch_at_the_moment_of_the_conversation_is_not_unanswered() -> None:
    """An outbound call logged at the same second as the reply belongs to that conversation."""
    d = deal(activities=(reply("talked", NOW - DAY), call("same-moment", NOW - DAY)))
    facts = gather_facts(d)
    assert (facts.unanswered, facts.last_attempt) == (0, None)


def test_only_the_ten_newest_unanswered_ids_are_kept_as_evidence() -> None:
    d = deal(activities=tuple(call(f"c{i:02}", NOW - (30 - i) * DAY) for i in range(12)))
    facts = gather_facts(d)
    assert facts.last_signal is None
    assert facts.unanswered == 12
    assert facts.unanswered_ids == tuple(f"c{i:02}" for i in range(2, 12))
