"""The seven cases from sales practice, with the exact actions the engine must decide."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from policies.engine import evaluate
from policies.model import (
    Action,
    ChangeStage,
    CloseReason,
    CloseTask,
    CreateTask,
    DealField,
    EnrolInNurture,
    NextStep,
    Priority,
    ReactivateFromNurture,
    SetDealFields,
    TaskType,
    action_kind,
)
from policies.planner import plan
from policies.simulate import apply_actions
from tests.unit import sales_cases as cases
from tests.unit.builders import NOW, OWNER, call, policy, reply
from tests.unit.builders import deal as build_deal


def kinds(actions: Iterable[Action]) -> list[tuple[str, str]]:
    return [(action_kind(a), a.rule_id) for a in actions]


def test_ghost_with_36_unanswered_calls_is_closed_lost_with_its_reason() -> None:
    """Thirty-six unanswered calls and a stop rule of six: closed lost now, with the configured reason."""
    decision = evaluate(policy(), cases.ghost(), NOW)
    assert kinds(decision.actions) == [("change_stage", "stop"), ("set_deal_fields", "stop")]
    stage, fields = decision.actions
    assert isinstance(stage, ChangeStage)
    assert isinstance(fields, SetDealFields)
    assert (stage.pipeline_id, stage.stage_id) == ("default", "closedlost")
    assert stage.close_reason == "No response after repeated outreach"
    assert fields.fields[DealField.FOLLOWUP_STATE] == "stopped"
    assert ("unanswered touches", "36") in [(e.label, e.value) for e in stage.explanation.evidence]


def test_ghost_simulated_month_by_month_gets_six_tasks_and_never_a_seventh() -> None:
    """A rep who does every task with no answer gets six follow-ups; the sixth failed call closes the deal."""
    rules = policy()
    start = NOW - timedelta(days=400)
    deal = build_deal("ghost-sim", created=start)
    created: list[CreateTask] = []
    for days in range(1, 200):
        moment = start + timedelta(days=days)
        decision = evaluate(rules, deal, moment)
        created += [a for a in decision.actions if isinstance(a, CreateTask)]
        deal = apply_actions(deal, decision.actions, moment)
        if deal.stage.is_closed:
            break
        for task in [t for t in deal.auto_tasks if t.is_open and t.due_at <= moment]:
            # The rep calls when the task is due, nobody answers, the rep completes the task.
            attempt = call(f"try-{len(created)}", moment)
            tasks = tuple(replace(t, is_open=False) if t.id == task.id else t for t in deal.auto_tasks)
            deal = replace(deal, activities=(*deal.activities, attempt), auto_tasks=tasks)
    assert deal.stage.id == "closedlost"
    assert len(created) == 6
    assert sum(1 for a in deal.activities if a.id.startswith("try-")) == 6
    assert evaluate(rules, deal, moment + timedelta(days=30)).actions == ()


def test_call_me_in_two_weeks_creates_one_call_task_at_the_agreed_time_and_nothing_before() -> None:
    """The customer's "call me in two weeks" gives one call task due 14 days after the conversation."""
    rules = policy()
    deal = cases.call_me_in_two_weeks()
    due = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)
    for days_before in (13, 7, 1):
        assert evaluate(rules, deal, due - timedelta(days=days_before)).actions == ()
    assert evaluate(rules, deal, due - timedelta(minutes=1)).actions == ()
    decision = evaluate(rules, deal, due)
    assert kinds(decision.actions) == [("create_task", "agreed_interval")]
    task = decision.actions[0]
    assert isinstance(task, CreateTask)
    assert task.due_at == due
    assert task.task_type is TaskType.CALL
    assert task.priority is Priority.HIGH
    after = apply_actions(deal, decision.actions, due)
    assert evaluate(rules, after, due + timedelta(days=3)).actions == ()


def test_call_me_in_two_weeks_on_a_weekend_falls_due_on_the_next_business_morning() -> None:
    """A Saturday conversation plus 14 days is a Saturday: the task falls due Monday at 09:00."""
    saturday = datetime(2026, 2, 21, 11, 0, tzinfo=UTC)
    deal = cases.call_me_in_two_weeks(saturday)
    decision = evaluate(policy(), deal, datetime(2026, 3, 9, 12, 0, tzinfo=UTC))
    (task,) = decision.actions
    assert isinstance(task, CreateTask)
    assert task.due_at == datetime(2026, 3, 9, 9, 0, tzinfo=UTC)


def test_next_step_without_why_and_when_gets_one_task_closed_once_the_fields_are_filled() -> None:
    """A what without why and when: the next-step task; once filled in, exactly that task is closed."""
    rules = policy()
    deal = cases.callback_without_why()
    decision = evaluate(rules, deal, NOW)
    assert kinds(decision.actions) == [("create_task", "next_step")]
    (task,) = decision.actions
    assert isinstance(task, CreateTask)
    assert "why, when" in task.explanation.summary
    deal = apply_actions(deal, decision.actions, NOW)
    assert evaluate(rules, deal, NOW + timedelta(hours=2)).actions == ()
    filled = replace(
        deal,
        next_step=NextStep("Call back about the pilot scope", "Budget closes in April", date(2026, 3, 12)),
    )
    closing = evaluate(rules, filled, NOW + timedelta(days=1))
    assert kinds(closing.actions) == [("close_task", "next_step")]
    (close,) = closing.actions
    assert isinstance(close, CloseTask)
    assert close.task_key == task.key
    assert close.reason is CloseReason.SETTLED


def test_not_now_goes_to_nurture_and_a_later_reply_reactivates_with_a_task() -> None:
    """Qualified but "not now": enrolment, state nurture, the rep's task closed; a reply brings it back."""
    rules = policy()
    deal = cases.not_now()
    decision = evaluate(rules, deal, NOW)
    assert kinds(decision.actions) == [
        ("close_task", "nurture"),
        ("enrol_in_nurture", "nurture"),
        ("set_deal_fields", "nurture"),
    ]
    close, enrol, state = decision.actions
    assert isinstance(close, CloseTask)
    assert close.task_id == "t-old"
    assert close.reason is CloseReason.DEAL_STOPPED
    assert isinstance(enrol, EnrolInNurture)
    assert enrol.contact_ids == ("c1",)
    assert enrol.nurture == "Nurture"
    assert isinstance(state, SetDealFields)
    assert state.fields[DealField.FOLLOWUP_STATE] == "nurture"
    parked = apply_actions(deal, decision.actions, NOW)
    assert evaluate(rules, parked, NOW + timedelta(days=9)).actions == ()

    later = NOW + timedelta(days=10)
    answered = replace(parked, activities=(*parked.activities, reply("r1", later - timedelta(hours=1))))
    back = evaluate(rules, answered, later)
    assert kinds(back.actions) == [
        ("reactivate_from_nurture", "nurture"),
        ("set_deal_fields", "nurture"),
        ("create_task", "nurture"),
    ]
    reactivate, fields, task = back.actions
    assert isinstance(reactivate, ReactivateFromNurture)
    assert reactivate.nurture == "Nurture"
    assert isinstance(fields, SetDealFields)
    assert fields.fields[DealField.FOLLOWUP_STATE] == "active"
    assert isinstance(task, CreateTask)
    assert task.task_type is TaskType.EMAIL
    assert task.owner_id == "o1"


def test_fifty_thousand_in_negotiation_with_only_a_gatekeeper_gets_the_decision_maker_task() -> None:
    """A 50,000 deal in negotiation with only a gatekeeper as contact: one "reach the decision maker" task."""
    decision = evaluate(policy(), cases.gatekeeper_only(), NOW)
    assert kinds(decision.actions) == [("create_task", "decision_maker")]
    (task,) = decision.actions
    assert isinstance(task, CreateTask)
    assert task.subject == "Reach the decision maker for Deal gatekeeper"
    assert task.priority is Priority.HIGH


def test_unqualified_lead_gets_only_the_qualify_task() -> None:
    """An unqualified lead with no next step and no touches gets the qualify task and nothing else."""
    decision = evaluate(policy(), cases.unqualified(), NOW)
    assert kinds(decision.actions) == [("create_task", "qualification")]
    verdicts = {v.rule_id: v for v in decision.verdicts}
    assert not verdicts["next_step"].fired
    assert not verdicts["agreed_interval"].fired
    assert "not qualified" in verdicts["agreed_interval"].reason


def test_three_hundred_overdue_deals_with_a_cap_of_twenty_spread_over_business_days() -> None:
    """300 overdue deals, 20 a day: the 20 largest today, the rest 20 per following business day."""
    deals = tuple(cases.own_contacts(d) for d in cases.overdue_pile(300))
    result = plan(policy(), deals, NOW, {"o7": replace(OWNER, id="o7")})
    today = [a for a in result.actions if isinstance(a, CreateTask)]
    assert len(today) == 20
    amounts = {d.id: d.amount or 0 for d in deals}
    top = sorted(amounts.values(), reverse=True)[:20]
    assert sorted((amounts[a.deal_id] for a in today), reverse=True) == top
    assert len(result.deferred) == 280
    per_day: dict[date, int] = {}
    for deferred in result.deferred:
        per_day[deferred.not_before] = per_day.get(deferred.not_before, 0) + 1
    assert set(per_day.values()) == {20}
    assert min(per_day) == date(2026, 3, 5)
    assert all(d.weekday() < 5 for d in per_day)
    assert len(per_day) == 14
    planned = {a.key for a in today} | {d.action.key for d in result.deferred}
    assert len(planned) == 300  # never dropped


def test_tasks_created_earlier_today_count_against_the_owner_cap() -> None:
    """Tasks the owner already got today use up the cap: five earlier ones leave room for fifteen."""
    deals = [cases.own_contacts(d) for d in cases.overdue_pile(30)]
    first = evaluate(policy(), deals[0], NOW)
    earlier = NOW - timedelta(hours=1)
    deals[0] = apply_actions(deals[0], first.actions, earlier)
    extra = tuple(
        replace(t, id=f"{t.id}-{i}", key=f"{t.key}{i}") for i in range(4) for t in deals[0].auto_tasks
    )
    deals[0] = replace(deals[0], auto_tasks=deals[0].auto_tasks + extra)
    result = plan(policy(), deals, NOW, {})
    assert sum(isinstance(a, CreateTask) for a in result.actions) == 15


def test_a_follow_up_that_fell_due_days_ago_is_due_at_the_next_working_moment_not_in_the_past() -> None:
    """The first run after the agreed date passed: due now (working hours), the missed date kept."""
    rules = policy()
    deal = cases.call_me_in_two_weeks()
    fell_due = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)
    later = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)  # a week later, Wednesday noon
    (task,) = evaluate(rules, deal, later).actions
    assert isinstance(task, CreateTask)
    assert task.due_at == later
    assert task.fell_due_at == fell_due
    assert ("due", "2026-03-04") in {(e.label, e.value) for e in task.explanation.evidence}
    assert task.key == evaluate(rules, deal, fell_due).actions[0].key  # same intent, same key
