"""What a cycle derives from a plan and from outcomes: audit entries, and the mirror after our writes.

The mirror is written through after every apply batch so that the next evaluation agrees with the CRM
even before the next pull has seen our writes (search indexes lag; a pull may not come until tomorrow's
full reconciliation). The effect of an action is ``policies.simulate`` (the engine's own meaning of its
actions), corrected by what only the CRM knows: the ids of the tasks it created and the modification
stamps it answered with. Those stamps are how the worker remembers its own writes: the next incremental
pull leaves out a deal whose stamp is still the one we wrote (no self-echo), and the next conditional
write of the deal expects the stamp the CRM has, not the one we read before our own writes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from connectors.base import ActionOutcome
from policies.model import (
    Action,
    AutoTask,
    CloseTask,
    CreateTask,
    Deal,
    EnrolInNurture,
    Pipeline,
    Plan,
    ReactivateFromNurture,
    UpdateTask,
)
from store import AuditEntry


class Simulate(Protocol):
    """The effect of actions on a deal (``policies.simulate.apply_actions``)."""

    def __call__(
        self,
        deal: Deal,
        actions: Iterable[Action],
        now: datetime,
        *,
        pipelines: Mapping[str, Pipeline] | None = None,
    ) -> Deal: ...


# Actions that write other records than the deal.
_OFF_DEAL = (CreateTask, UpdateTask, CloseTask, EnrolInNurture, ReactivateFromNurture)


def mirror_after(
    deal: Deal,
    actions: Sequence[Action],
    answered: Mapping[str, ActionOutcome],
    now: datetime,
    pipelines: Mapping[str, Pipeline],
    simulate: Simulate,
) -> Deal:
    """``deal`` once the CRM applied ``actions``, with the ids and stamps the CRM ``answered`` (by key)."""
    after = simulate(deal, actions, now, pipelines=pipelines)
    created: dict[str, tuple[str, datetime | None]] = {}  # action key -> (task id, stamp)
    written: dict[str, datetime | None] = {}  # task id -> stamp after our update or close
    deal_stamp: datetime | None = None
    for action in actions:
        outcome = answered.get(action.key)
        stamp = outcome.modified_at if outcome is not None else None
        if isinstance(action, CreateTask) and outcome is not None and outcome.crm_ids:
            created[action.key] = (outcome.crm_ids[0], stamp)
        elif isinstance(action, UpdateTask | CloseTask):
            written[action.task_id] = stamp
        elif not isinstance(action, _OFF_DEAL) and stamp is not None:
            deal_stamp = stamp if deal_stamp is None else max(deal_stamp, stamp)
    if created or written:
        tasks = tuple(_answered_task(t, created, written) for t in after.auto_tasks)
        rep = tuple(
            dataclasses.replace(t, modified_at=written[t.id]) if t.id in written else t
            for t in after.rep_tasks
        )
        after = dataclasses.replace(after, auto_tasks=tasks, rep_tasks=rep)
    # The deal's stamp is the one the CRM answered for our write of it; else it stays as we read it (never
    # our own clock's guess): off-deal writes may move it through roll-ups and a write may have no answer,
    # and the next pull then compares the deal with the mirror and restamps or re-reads it.
    return dataclasses.replace(after, modified_at=deal_stamp or deal.modified_at)


def _answered_task(
    task: AutoTask, created: Mapping[str, tuple[str, datetime | None]], written: Mapping[str, datetime | None]
) -> AutoTask:
    if task.key in created:
        task_id, stamp = created[task.key]
        return dataclasses.replace(task, id=task_id, modified_at=stamp)
    if task.id in written:
        return dataclasses.replace(task, modified_at=written[task.id])  # None: the CRM did not say
    return task


def deal_batches(actions: Sequence[Action], size: int) -> list[list[Action]]:
    """Batches of about ``size`` that never split one deal's actions (a crash leaves no half-done deal)."""
    by_deal: dict[str, list[Action]] = {}
    for action in actions:
        by_deal.setdefault(action.deal_id, []).append(action)
    batches: list[list[Action]] = [[]]
    for group in by_deal.values():
        if batches[-1] and len(batches[-1]) + len(group) > size:
            batches.append([])
        batches[-1].extend(group)
    return [b for b in batches if b]


def audit_entries(plan: Plan, new: Sequence[Action]) -> list[AuditEntry]:
    """Fired verdicts that lead to something new: an action to take, or one held back by a budget.

    A combined task (``tasks.combine``) carries out the verdicts of every rule with an item on it.

    A rule that keeps firing for an action already applied is not audited again every cycle (the trail
    would grow with time, not with decisions); ``followup explain`` shows every verdict on demand.
    """
    new_keys = {a.key for a in new}
    deferred: dict[tuple[str, str], list[str]] = {}
    for item in plan.deferred:
        for rule_id in _rules_served(item.action):
            deferred.setdefault((item.action.deal_id, rule_id), []).append(item.action.key)
    entries: list[AuditEntry] = []
    for decision in plan.decisions:
        for verdict in decision.verdicts:
            if not verdict.fired:
                continue
            keys = [
                a.key for a in decision.actions if verdict.rule_id in _rules_served(a) and a.key in new_keys
            ]
            held = deferred.get((decision.deal_id, verdict.rule_id), [])
            if not keys and not held:
                continue
            entries.append(
                AuditEntry(
                    deal_id=decision.deal_id,
                    rule_id=verdict.rule_id,
                    fired=True,
                    outcome="planned" if keys else "deferred",
                    reason=verdict.reason,
                    evidence=tuple((e.label, e.value) for e in verdict.evidence),
                    action_keys=tuple(keys or held),
                )
            )
    return entries


def _rules_served(action: Action) -> frozenset[str]:
    """The rules an action carries out: its own, and for a combined task every rule with an item on it."""
    if not isinstance(action, CreateTask | UpdateTask | CloseTask) or not action.items:
        return frozenset((action.rule_id,))
    return frozenset((action.rule_id, *(entry.item.rule_id for entry in action.items)))
