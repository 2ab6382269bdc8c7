"""Rich tables for ``followup plan`` and ``followup explain``: what a sales manager reads in a terminal."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from policies.codec import Snapshot
from policies.model import (
    CLOSED_ITEM_WORDS,
    Action,
    ChangeStage,
    ChecklistItem,
    CloseTask,
    CreateTask,
    Deal,
    Decision,
    EnrolInNurture,
    ReactivateFromNurture,
    SetDealFields,
    UpdateTask,
    action_kind,
)
from policies.model import Plan as PlanResult


def describe(action: Action) -> str:
    """One line saying what the action does, for a person; a combined task's checklist below it."""
    match action:
        case CreateTask():
            line = f"{action.task_type.value} task due {action.due_at:%Y-%m-%d %H:%M} UTC: {action.subject}"
            return line + checklist_lines(action.items)
        case UpdateTask():
            due = f" to {action.due_at:%Y-%m-%d %H:%M} UTC" if action.due_at else ""
            if action.items:
                return f"update task {action.task_id}{due}: {action.subject}" + checklist_lines(action.items)
            return f"move task {action.task_id}{due}"
        case CloseTask():
            return f"close task {action.task_id} ({action.reason.value})" + checklist_lines(action.items)
        case ChangeStage():
            reason = f", reason: {action.close_reason}" if action.close_reason else ""
            return f"stage -> {action.pipeline_id}/{action.stage_id}{reason}"
        case SetDealFields():
            return "set " + ", ".join(f"{k}={v}" for k, v in action.fields.items())
        case EnrolInNurture():
            return f"enrol {len(action.contact_ids)} contact(s) in {action.nurture!r}"
        case ReactivateFromNurture():
            return f"reactivate {len(action.contact_ids)} contact(s) from {action.nurture!r}"


def checklist_lines(items: Sequence[ChecklistItem]) -> str:
    """A combined task's items, one line each: ``[ ]`` open, ``[x]`` closed with how and when."""
    lines = []
    for entry in items:
        item = entry.item
        if item.closed is None:
            lines.append(f"\n  [ ] {entry.title}")
        else:
            when = f" {item.closed_on.isoformat()}" if item.closed_on else ""
            lines.append(f"\n  [x] {entry.title} ({CLOSED_ITEM_WORDS[item.closed]}{when})")
    return "".join(lines)


def render_plan(result: PlanResult, snapshot: Snapshot, now: datetime, mode: str) -> None:
    console = Console()
    names = {d.id: d.name for d in snapshot.deals}
    table = Table(title=f"Actions at {now.isoformat()} ({mode} mode)", show_lines=False)
    for column in ("deal", "rule", "action", "what", "why"):
        table.add_column(column, overflow="fold")
    for action in result.actions:
        table.add_row(
            names.get(action.deal_id, action.deal_id),
            action.rule_id,
            action_kind(action),
            escape(describe(action)),
            escape(action.explanation.summary),
        )
    console.print(table)
    if result.deferred:
        later = Table(title="Deferred by budgets (not dropped)")
        for column in ("deal", "rule", "not before", "what", "why deferred"):
            later.add_column(column, overflow="fold")
        for deferred in result.deferred:
            action = deferred.action
            later.add_row(
                names.get(action.deal_id, action.deal_id),
                action.rule_id,
                deferred.not_before.isoformat(),
                escape(describe(action)),
                deferred.reason,
            )
        console.print(later)
    counts = (len(result.actions), len(result.deferred), len(result.decisions))
    console.print("{} action(s) now, {} deferred, {} deal(s)".format(*counts))


def render_explanations(decisions: Sequence[Decision], deals: Sequence[Deal], now: datetime) -> None:
    console = Console()
    by_id = {d.id: d for d in deals}
    for decision in decisions:
        deal = by_id[decision.deal_id]
        table = Table(title=f"{deal.name} ({deal.id}), stage {deal.stage.id}, at {now:%Y-%m-%d %H:%M} UTC")
        for column in ("rule", "fired", "reason", "evidence"):
            table.add_column(column, overflow="fold")
        for verdict in decision.verdicts:
            evidence = "\n".join(f"{e.label}: {e.value}" for e in verdict.evidence)
            table.add_row(verdict.rule_id, "yes" if verdict.fired else "no", verdict.reason, evidence)
        console.print(table)
        for action in decision.actions:
            console.print(f"  -> {action_kind(action)}: {escape(describe(action))}")
