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

``apply_budgets`` is the second half on its own, for callers that evaluate deals themselves and count
usage across more deals than they evaluate (the backtest, ``policies.replay``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from policies.engine import evaluate
from policies.model import (
    Action,
    ActivityKind,
    CreateTask,
    Deal,
    Decision,
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


Touches = dict[str, list[datetime]]  # contact id -> moments of its touches, in time order


class BudgetUsage(Protocol):
    """What the budgets count that a plan does not create itself: tasks already created by owner and day,
    and customer touches by contact. ``usage_from_deals`` reads both from the deals of the plan; the
    backtest keeps its own running count across the deals of its simulated world."""

    def tasks_created(self, owner_id: str, day: date) -> int:
        """Auto-tasks created for ``owner_id`` ("" for none) on ``day`` of the owner's calendar."""
        ...

    def touches(
        self, contact_ids: Iterable[str], start: datetime, end: datetime
    ) -> dict[str, list[datetime]]:
        """Each contact's outbound calls, emails and meetings in ``(start, end]``, each activity once."""
        ...


def plan(policy: Policy, deals: Iterable[Deal], now: datetime, owners: Mapping[str, Owner]) -> Plan:
    """Evaluate all deals and apply the cross-deal budgets; see the module docstring."""
    deals = tuple(deals)
    decisions = tuple(evaluate(policy, d, now, owners.get(d.owner_id or "")) for d in deals)
    return apply_budgets(policy, decisions, deals, now, owners)


def apply_budgets(
    policy: Policy,
    decisions: Sequence[Decision],
    deals: Sequence[Deal],
    now: datetime,
    owners: Mapping[str, Owner],
    usage: BudgetUsage | None = None,
) -> Plan:
    """The budgets over ``decisions`` (of ``deals``); ``usage`` defaults to what ``deals`` show."""
    by_id = {d.id: d for d in deals}
    if usage is None:
        usage = usage_from_deals(policy, deals, owners)
    creates = [a for dec in decisions for a in dec.actions if isinstance(a, CreateTask)]
    deferred: dict[str, DeferredAction] = {}
    # Both budgets take their candidates most important first (``_priority``).
    ranked = sorted(creates, key=lambda t: _priority(by_id[t.deal_id], t, now))
    budgets = _Budgets(policy, usage, now, owners, deferred)
    budgets.per_contact(ranked)
    budgets.per_owner([c for c in ranked if c.key not in deferred])
    actions: list[Action] = [a for dec in decisions for a in dec.actions if a.key not in deferred]
    ordered = sorted(deferred.values(), key=lambda d: (d.not_before, d.action.deal_id, d.action.key))
    return Plan(tuple(actions), tuple(ordered), tuple(decisions))


class _DealsUsage:
    """``BudgetUsage`` read from the deals themselves: their auto-tasks and their activities."""

    def __init__(self, policy: Policy, deals: Sequence[Deal], owners: Mapping[str, Owner]) -> None:
        self._policy = policy
        self._deals = deals
        self._owners = owners
        self._created: dict[str, Counter[date]] = {}

    def tasks_created(self, owner_id: str, day: date) -> int:
        counts = self._created.get(owner_id)
        if counts is None:
            counts = self._created[owner_id] = Counter()
            calendar = self._policy.calendar_for(self._owners.get(owner_id))
            for deal in self._deals:
                for t in deal.auto_tasks:
                    if (t.owner_id or deal.owner_id or "") == owner_id:
                        counts[calendar.local_date(t.created_at)] += 1
        return counts[day]

    def touches(
        self, contact_ids: Iterable[str], start: datetime, end: datetime
    ) -> dict[str, list[datetime]]:
        wanted = set(contact_ids)
        found: dict[str, dict[str, datetime]] = defaultdict(dict)  # contact -> activity id -> when
        for deal in self._deals:
            for activity in deal.activities:
                if (
                    activity.direction is Direction.OUTBOUND
                    and activity.kind in _TOUCH_KINDS
                    and start < activity.occurred_at <= end
                ):
                    for contact_id in activity.contact_ids:
                        if contact_id in wanted:
                            found[contact_id][activity.id] = activity.occurred_at
        return {c: sorted(found[c].values()) for c in wanted}


def usage_from_deals(policy: Policy, deals: Sequence[Deal], owners: Mapping[str, Owner]) -> BudgetUsage:
    """What the budgets count, as the deals show it (what ``plan`` uses)."""
    return _DealsUsage(policy, deals, owners)


def _priority(deal: Deal, task: CreateTask, now: datetime) -> tuple[float, float, float, str, str]:
    """Sort key, most important first: amount, stage, days overdue (ids break ties deterministically)."""
    stage = deal.stage
    stage_rank = stage.probability if stage.probability is not None else float(stage.display_order)
    overdue = max(0.0, (now - (task.fell_due_at or task.due_at)).total_seconds() / 86400)
    return (-(deal.amount or 0.0), -stage_rank, -overdue, deal.id, task.key)


@dataclass(frozen=True, slots=True)
class _Budgets:
    """One plan's budgets: each takes the candidate tasks most important first and holds back into
    ``deferred`` those beyond its limit."""

    policy: Policy
    usage: BudgetUsage
    now: datetime
    owners: Mapping[str, Owner]
    deferred: dict[str, DeferredAction]

    def per_owner(self, ranked: Sequence[CreateTask]) -> None:
        cap = self.policy.budgets.max_new_tasks_per_owner_per_day
        pending: dict[str, list[CreateTask]] = defaultdict(list)
        for task in ranked:
            pending[task.owner_id or ""].append(task)
        for owner_id in sorted(pending):
            calendar = self.policy.calendar_for(self.owners.get(owner_id))
            today = calendar.local_date(self.now)
            room = max(0, cap - self.usage.tasks_created(owner_id, today))
            day: date = today
            for task in pending[owner_id]:
                while room == 0:
                    day = calendar.next_business_day(day)
                    room = cap
                room -= 1
                if day != today:
                    reason = f"owner's cap of {cap} new tasks a day reached; planned for {day.isoformat()}"
                    self.deferred[task.key] = DeferredAction(task, day, reason)

    def per_contact(self, ranked: Sequence[CreateTask]) -> None:
        limit = self.policy.budgets.max_touches_per_contact_per_week
        if limit is None:
            return
        wanted = {t.contact_id for t in ranked if t.contact_id is not None and t.task_type in _TOUCH_TASKS}
        if not wanted:
            return
        now = self.now
        planned = self.usage.touches(wanted, now - _WEEK, now)
        for task in ranked:
            if task.contact_id not in wanted or task.task_type not in _TOUCH_TASKS:
                continue
            assert task.contact_id is not None
            window = planned[task.contact_id]
            if len(window) < limit:
                window.append(now)
                continue
            frees_at = window[len(window) - limit] + _WEEK
            calendar = self.policy.calendar_for(self.owners.get(task.owner_id or ""))
            day = calendar.business_day_on_or_after(calendar.local_date(frees_at))
            reason = (
                f"contact already has {len(window)} touches in 7 days (limit {limit}); "
                f"planned for {day.isoformat()}"
            )
            self.deferred[task.key] = DeferredAction(task, day, reason)
