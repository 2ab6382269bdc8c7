"""The pure effect of actions on a deal aggregate, as the CRM would show it after they were applied.

Used three ways: the engine evaluates a deal again after a state change of its own (reactivation), the
Hypothesis property "evaluating again after the actions are applied adds nothing" checks the engine's
idempotency, and the in-memory CRM fake of the worker tests reuses it, so the fake and the engine agree
on what an action means.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from policies.model import (
    Action,
    Agreement,
    AutoTask,
    ChangeStage,
    Channel,
    CloseTask,
    CreateTask,
    Deal,
    DealField,
    EnrolInNurture,
    FieldValue,
    FollowupState,
    NextStep,
    Pipeline,
    ReactivateFromNurture,
    Readiness,
    SetDealFields,
    Stage,
    UpdateTask,
)


def task_id_for(key: str) -> str:
    """The id a simulated CRM gives the task created with ``key`` (deterministic, so runs compare)."""
    return f"task-{key}"


def apply_actions(
    deal: Deal,
    actions: Iterable[Action],
    now: datetime,
    *,
    pipelines: Mapping[str, Pipeline] | None = None,
) -> Deal:
    """``deal`` after ``actions`` (those of other deals are ignored). A stage unknown to ``pipelines``
    counts as closed-lost when the change carries a close reason, else as an open stage."""
    changes: dict[str, Any] = {}
    tasks = list(deal.auto_tasks)
    rep = list(deal.rep_tasks)
    fields = dict(deal.fields)
    touched = False
    for action in actions:
        if action.deal_id != deal.id:
            continue
        touched = True
        match action:
            case CreateTask():
                if any(t.key == action.key for t in tasks):
                    continue  # idempotent: the CRM already has it
                tasks.append(
                    AutoTask(
                        id=task_id_for(action.key),
                        key=action.key,
                        rule_id=action.rule_id,
                        created_at=now,
                        due_at=action.due_at,
                        owner_id=action.owner_id,
                        task_type=action.task_type,
                        subject=action.subject,
                        items=tuple(entry.item for entry in action.items),
                    )
                )
            case UpdateTask():
                tasks = [_updated(t, action) if t.id == action.task_id else t for t in tasks]
            case CloseTask():
                tasks = [_closed(t, action) if t.id == action.task_id else t for t in tasks]
                rep = [replace(t, is_open=False) if t.id == action.task_id else t for t in rep]
            case ChangeStage():
                changes["pipeline_id"] = action.pipeline_id
                changes["stage"] = _stage(action, pipelines)
                changes["stage_entered_at"] = now
                if action.close_reason is not None:
                    fields[DealField.CLOSE_REASON.value] = action.close_reason
            case SetDealFields():
                for name, value in action.fields.items():
                    _set_field(changes, fields, deal, str(name), value)
            case EnrolInNurture() | ReactivateFromNurture():
                pass  # list membership lives on contacts; the deal records it through SetDealFields
    if not touched:
        return deal
    return replace(
        deal, **changes, auto_tasks=tuple(tasks), rep_tasks=tuple(rep), fields=fields, modified_at=now
    )


def _updated(task: AutoTask, action: UpdateTask) -> AutoTask:
    if not action.items:
        return replace(
            task,
            due_at=action.due_at if action.due_at is not None else task.due_at,
            subject=action.subject if action.subject is not None else task.subject,
        )
    return replace(  # a combined task's checklist changed: what the CRM keeps of it is the items' state
        task,
        rule_id=action.rule_id,
        due_at=action.due_at if action.due_at is not None else task.due_at,
        subject=action.subject if action.subject is not None else task.subject,
        task_type=action.task_type if action.task_type is not None else task.task_type,
        items=tuple(entry.item for entry in action.items),
    )


def _closed(task: AutoTask, action: CloseTask) -> AutoTask:
    if action.items:
        return replace(task, is_open=False, items=tuple(entry.item for entry in action.items))
    return replace(task, is_open=False)


def _stage(action: ChangeStage, pipelines: Mapping[str, Pipeline] | None) -> Stage:
    pipeline = pipelines.get(action.pipeline_id) if pipelines is not None else None
    known = pipeline.stage(action.stage_id) if pipeline is not None else None
    if known is not None:
        return known
    closed = action.close_reason is not None
    return Stage(id=action.stage_id, label=action.stage_id, pipeline_id=action.pipeline_id, is_closed=closed)


def _set_field(
    changes: dict[str, Any], fields: dict[str, FieldValue], deal: Deal, name: str, value: FieldValue
) -> None:
    step: NextStep = changes.get("next_step", deal.next_step)
    agreement: Agreement = changes.get("agreement", deal.agreement)
    match name:
        case DealField.NEXT_STEP:
            changes["next_step"] = replace(step, what=None if value is None else str(value))
        case DealField.NEXT_STEP_WHY:
            changes["next_step"] = replace(step, why=None if value is None else str(value))
        case DealField.NEXT_STEP_DATE:
            when = value if isinstance(value, date) and not isinstance(value, datetime) else None
            changes["next_step"] = replace(step, when=when)
        case DealField.AGREED_INTERVAL_DAYS:
            days = int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
            changes["agreement"] = replace(agreement, interval_days=days)
        case DealField.AGREED_CHANNEL:
            changes["agreement"] = replace(agreement, channel=Channel(str(value)) if value else None)
        case DealField.READINESS:
            changes["readiness"] = Readiness(str(value)) if value else Readiness.UNKNOWN
        case DealField.QUALIFICATION_SCORE:
            score = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
            changes["qualification_score"] = score
        case DealField.FOLLOWUP_STATE:
            changes["followup_state"] = FollowupState(str(value)) if value else FollowupState.ACTIVE
        case DealField.FOLLOWUP_STATE_SINCE:
            changes["followup_state_since"] = value if isinstance(value, datetime) else None
        case _:
            fields[name] = value
