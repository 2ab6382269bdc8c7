"""Properties of the engine over generated deals: determinism, idempotency, and its invariants."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from hypothesis import HealthCheck, given, settings

from policies.engine import evaluate
from policies.model import CloseTask, CreateTask, Deal, Owner, UpdateTask
from policies.policy import Policy
from policies.simulate import apply_actions
from tests.unit.strategies import deals, nows, owners, policies

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(policies, deals(), nows, owners)
def test_evaluation_is_deterministic(policy: Policy, deal: Deal, now, owner: Owner | None) -> None:
    """The same policy, deal, moment and owner always give the same decision."""
    assert evaluate(policy, deal, now, owner) == evaluate(policy, deal, now, owner)


@FAST
@given(policies, deals(), nows, owners)
def test_evaluating_again_after_the_actions_are_applied_adds_nothing(
    policy: Policy, deal: Deal, now, owner: Owner | None
) -> None:
    """Once a decision's actions are applied, the same evaluation at the same moment decides nothing."""
    decision = evaluate(policy, deal, now, owner)
    after = apply_actions(deal, decision.actions, now)
    assert evaluate(policy, after, now, owner).actions == ()


@FAST
@given(policies, deals(), nows, owners)
def test_closed_deals_get_no_actions_but_closing_their_own_open_tasks(
    policy: Policy, deal: Deal, now, owner: Owner | None
) -> None:
    """A closed deal only gets its own open auto-tasks closed, and nothing at all when none are open."""
    if not deal.stage.is_closed:
        return
    actions = evaluate(policy, deal, now, owner).actions
    assert all(isinstance(a, CloseTask) for a in actions)
    assert {a.task_id for a in actions if isinstance(a, CloseTask)} == {
        t.id for t in deal.auto_tasks if t.is_open
    }


@FAST
@given(policies, deals(), nows, owners)
def test_never_two_open_auto_tasks_for_one_deal_and_rule(
    policy: Policy, deal: Deal, now, owner: Owner | None
) -> None:
    """After the actions are applied, each rule has at most one open auto-task on the deal."""
    after = apply_actions(deal, evaluate(policy, deal, now, owner).actions, now)
    counts = Counter(t.rule_id for t in after.auto_tasks if t.is_open)
    assert all(n <= 1 for n in counts.values()), counts


@FAST
@given(policies, deals(), nows, owners)
def test_every_due_date_is_a_business_day_inside_working_hours(
    policy: Policy, deal: Deal, now, owner: Owner | None
) -> None:
    """Every due date the engine sets lies on a business day within the owner's working hours."""
    calendar = policy.calendar_for(owner)
    for action in evaluate(policy, deal, now, owner).actions:
        if isinstance(action, CreateTask | UpdateTask) and action.due_at is not None:
            assert calendar.is_working_moment(action.due_at), (action.rule_id, action.due_at)


@FAST
@given(policies, deals(), nows, owners)
def test_engine_only_touches_its_own_tasks(policy: Policy, deal: Deal, now, owner: Owner | None) -> None:
    """Every task the engine closes or updates is one of crm-followup's own auto-tasks on the deal."""
    own = {t.id for t in deal.auto_tasks}
    for action in evaluate(policy, deal, now, owner).actions:
        if isinstance(action, CloseTask | UpdateTask):
            assert action.task_id in own


@FAST
@given(policies, deals(), nows, owners)
def test_with_combine_never_more_than_one_open_conversation_task_per_deal(
    policy: Policy, deal: Deal, now, owner: Owner | None
) -> None:
    """``tasks.combine``: after the actions, a deal has at most one open task besides the qualify task,
    and evaluating once more (at the same moment or an hour later) still leaves at most one."""
    if not policy.tasks.combine:
        return
    after = apply_actions(deal, evaluate(policy, deal, now, owner).actions, now)
    open_tasks = [t for t in after.auto_tasks if t.is_open and t.rule_id != "qualification"]
    assert len(open_tasks) <= 1, [(t.id, t.rule_id) for t in open_tasks]
    later = now + timedelta(hours=1)
    again = apply_actions(after, evaluate(policy, after, later, owner).actions, later)
    assert sum(1 for t in again.auto_tasks if t.is_open and t.rule_id != "qualification") <= 1


@FAST
@given(policies, deals(), nows, owners)
def test_a_combined_task_keeps_every_item_it_had(
    policy: Policy, deal: Deal, now, owner: Owner | None
) -> None:
    """Items are never dropped from a checklist: a combined task's items after the actions include every
    item it had before (in the same or a later state), and an item closed before stays closed."""
    after = {t.id: t for t in apply_actions(deal, evaluate(policy, deal, now, owner).actions, now).auto_tasks}
    for task in deal.auto_tasks:
        if not task.items:
            continue
        kept = {i.key: i for i in after[task.id].items}
        for item in task.items:
            assert item.key in kept
            if item.closed is not None:
                assert kept[item.key].closed == item.closed
