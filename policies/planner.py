"""``plan(policy, deals, now, owners)``: every deal's decision, then the budgets across deals.

Budgets keep crm-followup from burying reps in busy work (rule h):

* at most ``max_new_tasks_per_owner_per_day`` new auto-tasks per owner per day, tasks already created
  today counted from the deals' ``auto_tasks``. The owner's candidates are ranked by amount, stage
  (probability, else pipeline order) and days overdue; today's share goes out now, the rest is planned
  for the following business days in the owner's calendar, as many per day as the cap allows;
* at most ``max_touches_per_contact_per_week`` customer touches (calls, emails, meetings, done or planned)
  per contact in any seven days; a touch task beyond that waits until the oldest touch leaves the window.

Held-back actions come back in ``Plan.deferred`` with the business day they are planned for; they are
never dropped. The next run evaluates again and, with the same keys, creates them on their day.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta

from policies.engine import evaluate
from policies.model import (
    Action,
    ActivityKind,
    CreateTask,
    Deal,
    DeferredAction,
    Direction,
    Owner,
    Plan,
    TaskType,
)
from policies.policy import Policy

_TOUCH_TASKS = frozenset({TaskType.CALL, TaskType.EMAIL, TaskType.MEETING})
_TOUCH_KINDS = frozenset({ActivityKind.CALL, ActivityKind.EMAIL, ActivityKind.MEETING})
_WEEK = timedelta(days=7)


def plan(policy: Policy, deals: Iterable[Deal], now: datetime, owners: Mapping[str, Owner]) -> Plan:
    """Evaluate all deals and apply the cross-deal budgets; see the module docstring."""
    deals = tuple(deals)
    by_id = {d.id: d for d in deals}
    decisions = tuple(evaluate(policy, d, now, owners.get(d.owner_id or "")) for d in deals)
    creates = [a for dec in decisions for a in dec.actions if isinstance(a, CreateTask)]
    deferred: dict[str, DeferredAction] = {}
    _contact_budget(policy, deals, by_id, creates, now, owners, deferred)
    _owner_budget(policy, deals, by_id, [c for c in creates if c.key not in deferred], now, owners, deferred)
    actions: list[Action] = [a for dec in decisions for a in dec.actions if a.key not in deferred]
    ordered = sorted(deferred.values(), key=lambda d: (d.not_before, d.action.deal_id, d.action.key))
    return Plan(tuple(actions), tuple(ordered), decisions)


def _priority(deal: Deal, task: CreateTask, now: datetime) -> tuple[float, float, float, str, str]:
    """Sort key, most important first: amount, stage, days overdue (ids break ties deterministically)."""
    stage = deal.stage
    stage_rank = stage.probability if stage.probability is not None else float(stage.display_order)
    overdue = max(0.0, (now - (task.fell_due_at or task.due_at)).total_seconds() / 86400)
    return (-(deal.amount or 0.0), -stage_rank, -overdue, deal.id, task.key)


def _owner_budget(
    policy: Policy,
    deals: tuple[Deal, ...],
    by_id: Mapping[str, Deal],
    creates: list[CreateTask],
    now: datetime,
    owners: Mapping[str, Owner],
    deferred: dict[str, DeferredAction],
) -> None:
    cap = policy.budgets.max_new_tasks_per_owner_per_day
    pending: dict[str, list[CreateTask]] = defaultdict(list)
    for task in creates:
        pending[task.owner_id or ""].append(task)
    created_today: dict[str, int] = defaultdict(int)
    for deal in deals:
        for t in deal.auto_tasks:
            owner_id = t.owner_id or deal.owner_id or ""
            if owner_id in pending:
                calendar = policy.calendar_for(owners.get(owner_id))
                if calendar.local_date(t.created_at) == calendar.local_date(now):
                    created_today[owner_id] += 1
    for owner_id in sorted(pending):
        calendar = policy.calendar_for(owners.get(owner_id))
        today = calendar.local_date(now)
        queue = sorted(pending[owner_id], key=lambda t: _priority(by_id[t.deal_id], t, now))
        room = max(0, cap - created_today[owner_id])
        day: date = today
        for task in queue:
            while room == 0:
                day = calendar.next_business_day(day)
                room = cap
            room -= 1
            if day != today:
                reason = f"owner's cap of {cap} new tasks a day reached; planned for {day.isoformat()}"
                deferred[task.key] = DeferredAction(task, day, reason)


def _contact_budget(
    policy: Policy,
    deals: tuple[Deal, ...],
    by_id: Mapping[str, Deal],
    creates: list[CreateTask],
    now: datetime,
    owners: Mapping[str, Owner],
    deferred: dict[str, DeferredAction],
) -> None:
    limit = policy.budgets.max_touches_per_contact_per_week
    if limit is None:
        return
    wanted = {t.contact_id for t in creates if t.contact_id is not None and t.task_type in _TOUCH_TASKS}
    if not wanted:
        return
    touches: dict[str, dict[str, datetime]] = defaultdict(dict)  # contact -> activity id -> when
    start = now - _WEEK
    for deal in deals:
        for activity in deal.activities:
            if (
                activity.direction is Direction.OUTBOUND
                and activity.kind in _TOUCH_KINDS
                and start < activity.occurred_at <= now
            ):
                for contact_id in activity.contact_ids:
                    if contact_id in wanted:
                        touches[contact_id][activity.id] = activity.occurred_at
    planned: dict[str, list[datetime]] = {c: sorted(touches[c].values()) for c in wanted}
    ranked = sorted(
        (t for t in creates if t.contact_id in wanted and t.task_type in _TOUCH_TASKS),
        key=lambda t: _priority(by_id[t.deal_id], t, now),
    )
    for task in ranked:
        assert task.contact_id is not None
        window = planned[task.contact_id]
        if len(window) < limit:
            window.append(now)
            continue
        frees_at = window[len(window) - limit] + _WEEK
        calendar = policy.calendar_for(owners.get(task.owner_id or ""))
        day = calendar.business_day_on_or_after(calendar.local_date(frees_at))
        reason = (
            f"contact already has {len(window)} touches in 7 days (limit {limit}); "
            f"planned for {day.isoformat()}"
        )
        deferred[task.key] = DeferredAction(task, day, reason)
