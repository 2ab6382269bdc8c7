"""One conversation, one task (``tasks.combine``): table tests of the combined task's whole life."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from connectors.checklist import plain_checklist
from policies.engine import evaluate
from policies.model import (
    Action,
    AutoTask,
    Channel,
    CloseReason,
    CloseTask,
    ContactRole,
    CreateTask,
    Deal,
    FollowupState,
    NextStep,
    Outcome,
    Priority,
    TaskType,
    UpdateTask,
    action_kind,
)
from policies.planner import plan
from policies.simulate import apply_actions
from tests.unit.builders import NOW, OWNER, call, contact, deal, policy, reply

VAGUE = NextStep("follow up", None, None)
COMPLETE = NextStep("Send the revised offer with 3-year pricing", "Budget round in April", date(2026, 3, 20))
SEPARATE = policy("tasks: {combine: false}\n")


def three_needs(deal_id: str = "combo") -> Deal:
    """Due for a follow-up (last conversation nine days ago, cadence 7d), a vague next step, 50,000 in
    negotiation with only a gatekeeper among the contacts."""
    return deal(
        deal_id,
        stage_id="negotiation",
        amount=50_000,
        next_step=VAGUE,
        contacts=(contact("c1", ContactRole.GATEKEEPER, name="Sam Assistant"),),
        activities=(call(f"{deal_id}-a1", NOW - timedelta(days=9), Outcome.CONNECTED),),
    )


def kinds(actions: tuple[Action, ...] | list[Action]) -> list[tuple[str, str]]:
    return [(action_kind(a), a.rule_id) for a in actions]


def states(task: AutoTask) -> dict[str, str]:
    return {i.rule_id: (i.closed.value if i.closed else "open") for i in task.items}


def test_a_deal_with_three_needs_gets_exactly_one_task_with_three_items() -> None:
    """Follow-up due, vague next step, only a gatekeeper: one task, three items, each with its why."""
    decision = evaluate(policy(), three_needs(), NOW)
    (task,) = decision.actions
    assert isinstance(task, CreateTask)
    assert task.rule_id == "conversation"
    assert [c.item.rule_id for c in task.items] == ["agreed_interval", "next_step", "decision_maker"]
    assert all(c.item.closed is None for c in task.items)
    assert task.subject == "Follow up with Sam Assistant (Deal combo) + next step, decision maker"
    assert task.task_type is TaskType.CALL  # no agreed channel: the most direct one among the items
    assert task.priority is Priority.HIGH  # the decision-maker item's
    assert task.due_at == NOW
    assert task.contact_id == "c1"
    assert task.body == "One conversation with Sam Assistant: 3 of 3 open."  # the checklist's heading
    text = plain_checklist(task.items, task.body)  # as the Salesforce connector renders it
    for entry in task.items:
        assert entry.why, entry.item.rule_id
        assert entry.evidence, entry.item.rule_id
        assert f"[ ] {entry.title}" in text
    assert "Why: the next step is incomplete: what is vague, why, when" in text
    # The explanation keeps every item's evidence, each item's after a line naming it.
    evidence = [(e.label, e.value) for e in task.explanation.evidence]
    for entry in task.items:
        label = {"agreed_interval": "follow-up", "next_step": "next step"}.get(
            entry.item.rule_id, "decision maker"
        )
        start = evidence.index((label, "open"))
        assert evidence[start + 1 : start + 1 + len(entry.evidence)] == [
            (e.label, e.value) for e in entry.evidence
        ]
    # explain: every rule keeps its own verdict
    fired = {v.rule_id for v in decision.verdicts if v.fired}
    assert {"agreed_interval", "next_step", "decision_maker"} <= fired


def test_without_combine_the_same_deal_gets_one_task_per_rule() -> None:
    """``tasks.combine: false`` restores today's behaviour: three tasks, one per rule."""
    decision = evaluate(SEPARATE, three_needs(), NOW)
    assert kinds(decision.actions) == [
        ("create_task", "next_step"),
        ("create_task", "agreed_interval"),
        ("create_task", "decision_maker"),
    ]


def test_filling_in_the_next_step_updates_the_same_task_two_items_open_one_done() -> None:
    """The rep records a complete next step: the task is updated in place, the item ticked with the date."""
    rules = policy()
    deal = three_needs()
    first = evaluate(rules, deal, NOW)
    deal = apply_actions(deal, first.actions, NOW)
    (created,) = deal.auto_tasks
    later = NOW + timedelta(hours=3)
    deal = replace(deal, next_step=COMPLETE)
    decision = evaluate(rules, deal, later)
    (update,) = decision.actions
    assert isinstance(update, UpdateTask)
    assert update.task_id == created.id
    assert update.due_at is None  # the due date does not move
    assert [(c.item.rule_id, c.item.closed, c.item.closed_on) for c in update.items] == [
        ("agreed_interval", None, None),
        ("next_step", CloseReason.SETTLED, date(2026, 3, 4)),
        ("decision_maker", None, None),
    ]
    assert update.subject == "Follow up with Sam Assistant (Deal combo) + decision maker"
    text = plain_checklist(update.items, update.body or "")
    assert "[x] Agree the next step for Deal combo: what, why, when (done 2026-03-04)" in text
    assert update.body == "One conversation with Sam Assistant: 2 of 3 open."
    after = apply_actions(deal, decision.actions, later)
    (task,) = after.auto_tasks
    assert task.is_open
    assert states(task) == {"agreed_interval": "open", "next_step": "settled", "decision_maker": "open"}
    assert evaluate(rules, after, later).actions == ()


def test_a_reply_settles_the_follow_up_and_the_task_closes_only_once_nothing_is_left_open() -> None:
    """The customer replies: the follow-up item is satisfied but the decision maker is still missing, so
    the task stays open; once a decision maker is on the deal, it closes with the reason."""
    rules = policy()
    deal = three_needs()
    deal = apply_actions(deal, evaluate(rules, deal, NOW).actions, NOW)
    deal = replace(deal, next_step=COMPLETE)
    moment = NOW + timedelta(hours=3)
    deal = apply_actions(deal, evaluate(rules, deal, moment).actions, moment)

    moment = NOW + timedelta(days=1)
    deal = replace(deal, activities=(*deal.activities, reply("r1", moment - timedelta(hours=1))))
    decision = evaluate(rules, deal, moment)
    (update,) = decision.actions
    assert isinstance(update, UpdateTask)
    assert [(c.item.rule_id, c.item.closed) for c in update.items] == [
        ("agreed_interval", CloseReason.SUPERSEDED),
        ("next_step", CloseReason.SETTLED),
        ("decision_maker", None),
    ]
    assert update.subject == "Reach the decision maker for Deal combo"
    deal = apply_actions(deal, decision.actions, moment)
    assert deal.auto_tasks[0].is_open
    assert evaluate(rules, deal, moment).actions == ()

    moment += timedelta(hours=2)
    deal = replace(deal, contacts=(*deal.contacts, contact("c2", ContactRole.DECISION_MAKER, name="Dana")))
    (close,) = evaluate(rules, deal, moment).actions
    assert isinstance(close, CloseTask)
    assert close.task_id == deal.auto_tasks[0].id
    assert close.reason is CloseReason.SETTLED
    assert all(c.item.closed is not None for c in close.items)
    assert close.explanation.summary == (
        "nothing left open: follow-up no longer needed; next step done; decision maker done"
    )
    closed = apply_actions(deal, (close,), moment)
    assert not closed.auto_tasks[0].is_open
    assert evaluate(rules, closed, moment).actions == ()


def test_the_combined_task_takes_the_channel_the_customer_agreed() -> None:
    """An agreed channel (e-mail) wins over the most direct one; alone, each item keeps its own type."""
    decision = evaluate(
        policy(),
        replace(three_needs(), agreement=replace(three_needs().agreement, channel=Channel.EMAIL)),
        NOW,
    )
    (task,) = decision.actions
    assert isinstance(task, CreateTask)
    assert task.task_type is TaskType.EMAIL


def test_a_new_need_joins_the_open_task_and_its_due_date_only_moves_earlier() -> None:
    """A task of one rule is open; a second need arises: it is added, the due date never moves later."""
    rules = policy()
    agreed_at = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)  # the customer agreed on this moment
    talk = call("cb1", agreed_at - timedelta(days=14), Outcome.CONNECTED)
    start = deal("agreed", activities=(talk,), interval_days=14, channel=Channel.CALL)
    first = evaluate(rules, start, agreed_at)
    (followup,) = first.actions
    assert isinstance(followup, CreateTask)
    assert followup.rule_id == "agreed_interval"  # alone: the rule's own task, exactly as before
    start = apply_actions(start, first.actions, agreed_at)

    later = agreed_at + timedelta(hours=2)  # the next step turns vague after the agreed moment
    vague = replace(start, next_step=VAGUE)
    (update,) = evaluate(rules, vague, later).actions
    assert isinstance(update, UpdateTask)
    assert update.task_id == start.auto_tasks[0].id
    assert update.due_at is None  # a need due later does not push the agreed call back
    assert [c.item.rule_id for c in update.items] == ["agreed_interval", "next_step"]
    assert update.rule_id == "conversation"

    # An open decision-maker task the rep pushed to next week; a vague next step is due now: earlier.
    asked = AutoTask(
        "t-dm",
        "cf-00000000000000000001",
        "decision_maker",
        NOW - timedelta(days=1),
        NOW + timedelta(days=6),
        owner_id="o1",
    )
    pushed = replace(three_needs(), auto_tasks=(asked,), activities=())
    (moved,) = [a for a in evaluate(rules, pushed, NOW).actions if isinstance(a, UpdateTask)]
    assert moved.task_id == "t-dm"
    assert moved.due_at == NOW


def test_keys_stay_the_same_for_the_same_intent_across_runs() -> None:
    """The combined task's key is its main item's intent: the same requests give the same key later."""
    rules = policy()
    deal = three_needs()
    first = evaluate(rules, deal, NOW).actions[0]
    again = evaluate(rules, deal, NOW + timedelta(hours=5)).actions[0]
    assert isinstance(first, CreateTask)
    assert isinstance(again, CreateTask)
    assert first.key == again.key == first.items[0].item.key
    assert [c.item.key for c in first.items] == [c.item.key for c in again.items]
    applied = apply_actions(deal, (first,), NOW)
    filled = replace(applied, next_step=COMPLETE)
    one = evaluate(rules, filled, NOW + timedelta(hours=1)).actions[0]
    two = evaluate(rules, filled, NOW + timedelta(days=1, hours=1)).actions[0]
    assert isinstance(one, UpdateTask)
    assert one.key == two.key  # marking the same item done is the same intent, whatever the day


def test_an_unqualified_deal_gets_only_its_qualify_task_and_the_combined_task_closes() -> None:
    """The qualification gate stays exclusive: the open combined task closes, the qualify task comes."""
    rules = policy()
    deal = three_needs()
    deal = apply_actions(deal, evaluate(rules, deal, NOW).actions, NOW)
    unqualified = replace(deal, qualification_score=None)
    decision = evaluate(rules, unqualified, NOW + timedelta(hours=1))
    assert kinds(decision.actions) == [("close_task", "conversation"), ("create_task", "qualification")]
    close = decision.actions[0]
    assert isinstance(close, CloseTask)
    assert close.reason is CloseReason.SUPERSEDED
    (qualify,) = evaluate(rules, replace(three_needs(), qualification_score=None), NOW).actions
    assert isinstance(qualify, CreateTask)
    assert not qualify.items


def test_open_tasks_from_one_task_per_rule_merge_into_the_earliest() -> None:
    """Switching combine on with several open one-rule tasks: the earliest takes every open item."""
    rules = policy()
    deal = three_needs()
    separate = apply_actions(deal, evaluate(SEPARATE, deal, NOW).actions, NOW)
    assert len([t for t in separate.auto_tasks if t.is_open]) == 3
    decision = evaluate(rules, separate, NOW + timedelta(hours=1))
    assert sorted(action_kind(a) for a in decision.actions) == ["close_task", "close_task", "update_task"]
    (update,) = [a for a in decision.actions if isinstance(a, UpdateTask)]
    assert {c.item.rule_id for c in update.items} == {"agreed_interval", "next_step", "decision_maker"}
    closes = [a for a in decision.actions if isinstance(a, CloseTask)]
    assert all(c.reason is CloseReason.SUPERSEDED for c in closes)
    assert {c.task_id for c in closes} | {update.task_id} == {t.id for t in separate.auto_tasks}
    merged = apply_actions(separate, decision.actions, NOW + timedelta(hours=1))
    assert len([t for t in merged.auto_tasks if t.is_open]) == 1
    assert evaluate(rules, merged, NOW + timedelta(hours=1)).actions == ()


def test_a_reactivated_deal_with_an_incomplete_next_step_gets_one_task() -> None:
    """A reply brings a nurtured deal back; its next step is vague too: one task, two items."""
    rules = policy()
    nurtured = replace(
        deal("back", next_step=VAGUE),
        followup_state=FollowupState.NURTURE,
        followup_state_since=NOW - timedelta(days=20),
        activities=(reply("r1", NOW - timedelta(hours=1)),),
    )
    decision = evaluate(rules, nurtured, NOW)
    creates = [a for a in decision.actions if isinstance(a, CreateTask)]
    assert len(creates) == 1
    (task,) = creates
    assert [c.item.rule_id for c in task.items] == ["nurture", "next_step"]
    assert task.key == task.items[0].item.key  # the reactivation's intent
    assert task.rule_id == "conversation"
    assert task.subject == "Kim Buyer is back: reactivate Deal back + next step"
    after = apply_actions(nurtured, decision.actions, NOW)
    assert evaluate(rules, after, NOW).actions == ()


def test_budgets_count_a_combined_task_once_and_defer_it_whole() -> None:
    """A cap of two new tasks a day: three deals with three needs each give two tasks now, one later."""
    rules = policy(base=_capped(2))
    deals = [replace(three_needs(f"combo-{i}"), amount=50_000 + i) for i in range(3)]
    result = plan(rules, deals, NOW, {"o1": OWNER})
    now = [a for a in result.actions if isinstance(a, CreateTask)]
    assert [len(a.items) for a in now] == [3, 3]
    (held,) = result.deferred
    assert isinstance(held.action, CreateTask)
    assert len(held.action.items) == 3
    assert held.action.deal_id == "combo-0"  # the smallest amount waits
    assert held.not_before == date(2026, 3, 5)


def test_the_contact_budget_counts_a_combined_call_as_one_touch_and_defers_it_whole() -> None:
    """Three touches a week per contact: after two this week the combined call goes out (one touch, not
    three items); after three it waits, all of it."""
    rules = policy()
    for earlier, deferred in ((2, False), (3, True)):
        touches = tuple(call(f"t{i}", NOW - timedelta(days=i + 1)) for i in range(earlier))
        other = deal("other", stage_id="closedwon", activities=touches)  # the same contact, c1
        result = plan(rules, [three_needs(), other], NOW, {"o1": OWNER})
        now = [a for a in result.actions if isinstance(a, CreateTask)]
        held = [d.action for d in result.deferred]
        (task,) = held if deferred else now
        assert isinstance(task, CreateTask)
        assert len(task.items) == 3
        assert (len(now), len(held)) == ((0, 1) if deferred else (1, 0))


def _capped(cap: int) -> str:
    from tests.unit.builders import BASE_POLICY

    return BASE_POLICY.replace(
        "max_new_tasks_per_owner_per_day: 20", f"max_new_tasks_per_owner_per_day: {cap}"
    )


def test_a_new_need_joins_a_task_whose_other_item_expires_at_the_same_moment() -> None:
    """One item expires while another stays open and a follow-up falls due in the same evaluation: the
    task stays open, so the follow-up joins it; no second task that the next run would merge away."""
    rules = policy()
    asked_at = NOW - timedelta(days=15)
    older = call("x-a1", asked_at - timedelta(days=1), Outcome.CONNECTED)
    base = replace(three_needs(), activities=(older,), created_at=asked_at - timedelta(days=30))
    first = evaluate(rules, base, asked_at)
    combined_task = first.actions[0]
    assert isinstance(combined_task, CreateTask)
    assert [c.item.rule_id for c in combined_task.items] == ["next_step", "decision_maker"]
    combined = apply_actions(base, first.actions, asked_at)
    # Two days ago the next step changed (still vague): its item is replaced, the decision maker's stays.
    changed_at = NOW - timedelta(days=2)
    talked = call(
        "x-a2", datetime(2026, 2, 24, 10, tzinfo=UTC), Outcome.CONNECTED
    )  # follow-up due 3 Mar 10:00
    combined = replace(combined, next_step=NextStep("check in", None, None), activities=(older, talked))
    combined = apply_actions(combined, evaluate(rules, combined, changed_at).actions, changed_at)

    moment = datetime(2026, 3, 3, 10, tzinfo=UTC)  # the decision-maker item expires (14 days) right now
    decision = evaluate(rules, combined, moment)
    (update,) = decision.actions
    assert isinstance(update, UpdateTask)
    assert [(c.item.rule_id, c.item.closed) for c in update.items] == [
        ("next_step", CloseReason.SUPERSEDED),
        ("decision_maker", CloseReason.EXPIRED),
        ("next_step", None),
        ("agreed_interval", None),
    ]
    after = apply_actions(combined, decision.actions, moment)
    assert len([t for t in after.auto_tasks if t.is_open]) == 1
    assert evaluate(rules, after, moment).actions == ()


def test_with_combine_switched_off_a_combined_task_is_still_ticked_off_and_closed_item_by_item() -> None:
    """``tasks.combine: false`` after a combined task was created: its items are still updated in place and
    it closes once nothing is left; a new need gets a task of its own rule."""
    deal = three_needs()
    deal = apply_actions(deal, evaluate(policy(), deal, NOW).actions, NOW)
    (combined,) = deal.auto_tasks
    moment = NOW + timedelta(hours=3)
    deal = replace(deal, next_step=COMPLETE)
    (update,) = evaluate(SEPARATE, deal, moment).actions
    assert isinstance(update, UpdateTask)
    assert update.task_id == combined.id
    assert [(c.item.rule_id, c.item.closed) for c in update.items] == [
        ("agreed_interval", None),
        ("next_step", CloseReason.SETTLED),
        ("decision_maker", None),
    ]
    deal = apply_actions(deal, (update,), moment)
    assert evaluate(SEPARATE, deal, moment).actions == ()

    moment = NOW + timedelta(days=1)
    deal = replace(
        deal,
        activities=(*deal.activities, reply("r1", moment - timedelta(hours=1))),
        contacts=(*deal.contacts, contact("c2", ContactRole.DECISION_MAKER, name="Dana")),
    )
    (close,) = evaluate(SEPARATE, deal, moment).actions
    assert isinstance(close, CloseTask)
    assert close.task_id == combined.id
    assert all(c.item.closed is not None for c in close.items)
    deal = apply_actions(deal, (close,), moment)
    assert evaluate(SEPARATE, deal, moment).actions == ()

    vague = replace(deal, next_step=VAGUE)
    assert kinds(evaluate(SEPARATE, vague, moment).actions) == [("create_task", "next_step")]


def test_a_one_rule_task_its_rule_moves_is_closed_when_its_item_moves_into_the_earliest() -> None:
    """The follow-up rule brings its own task forward while the conversation goes to an earlier task: the
    follow-up's task hands its item over and closes (it is not moved and left open beside the checklist,
    which the next evaluation would close as a duplicate). Found by the idempotency property."""
    rules = policy()
    separate = apply_actions(three_needs(), evaluate(SEPARATE, three_needs(), NOW).actions, NOW)
    later = NOW + timedelta(days=1)  # set for a later moment than the rule now wants (another key)
    tasks = tuple(
        replace(t, due_at=later, key="cf-an-earlier-intent")
        if t.is_open and t.rule_id == "agreed_interval"
        else t
        for t in separate.auto_tasks
    )
    deal = replace(separate, auto_tasks=tasks)
    at = NOW + timedelta(hours=1)
    decision = evaluate(rules, deal, at)
    (followup,) = [t for t in tasks if t.is_open and t.rule_id == "agreed_interval"]
    on_followup = [a for a in decision.actions if getattr(a, "task_id", None) == followup.id]
    (close,) = on_followup
    assert isinstance(close, CloseTask)
    assert close.reason is CloseReason.SUPERSEDED
    merged = apply_actions(deal, decision.actions, at)
    assert len([t for t in merged.auto_tasks if t.is_open]) == 1
    assert evaluate(rules, merged, at).actions == ()
