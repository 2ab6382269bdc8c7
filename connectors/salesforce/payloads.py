"""Pure mapping from engine actions to sObject Collections records (the JSON Salesforce receives).

simple-salesforce serialises bodies with ``json.dumps``, which refuses ``date``/``datetime``; values are
formatted here: dates ``YYYY-MM-DD``, datetimes ``YYYY-MM-DDThh:mm:ssZ`` in UTC. A Task's ``ActivityDate``
is the due date in the owner's time zone (Salesforce stores it as a plain date and must not shift it,
https://github.com/forcedotcom/dataloader/issues/280), computed from the action's UTC ``due_at``.

Tasks crm-followup creates are to-dos: ``TaskSubtype`` ``Task`` (``Call``/``Email`` subtypes would render
them as logged calls and e-mails in the activity timeline) and ``Type`` per channel, so reps see "Call",
"Email" or "Meeting" in their task list. Every created Task carries the idempotency key and the rule id.
A combined task's ``Description`` (plain text) is its checklist, then the checklist's state on a line of
its own (``connectors.checklist``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any

from connectors.checklist import items_line, plain_checklist
from connectors.salesforce.values import zone
from policies.model import (
    ChangeStage,
    ChecklistItem,
    CloseReason,
    CloseTask,
    CreateTask,
    DealField,
    Explanation,
    FieldValue,
    Priority,
    SetDealFields,
    TaskType,
    UpdateTask,
)

SUBJECT_MAX = 255
DESCRIPTION_MAX = 32_000

TASK_TYPES: Mapping[TaskType, str] = {
    TaskType.CALL: "Call",
    TaskType.EMAIL: "Email",
    TaskType.MEETING: "Meeting",
    TaskType.TODO: "Other",
}
PRIORITIES: Mapping[Priority, str] = {Priority.HIGH: "High", Priority.MEDIUM: "Normal", Priority.LOW: "Low"}


@dataclass(frozen=True, slots=True)
class PayloadConfig:
    opportunity_fields: Mapping[DealField, str]
    task_key_field: str
    task_rule_field: str
    open_task_status: str
    closed_task_status: str
    default_time_zone: str
    stage_names: Mapping[str, str] = field(default_factory=dict)  # policy stage id -> StageName


def format_value(value: FieldValue | Enum) -> Any:
    """A JSON-safe Salesforce value."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetimes cannot be written to Salesforce")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    return value


def description(body: str, explanation: Explanation) -> str:
    """The Task description: the body, then why (the explanation and its evidence)."""
    lines = [body.rstrip(), "", f"Why: {explanation.summary}"] if body else [f"Why: {explanation.summary}"]
    lines += [f"- {e.label}: {e.value}" for e in explanation.evidence]
    text = "\n".join(lines)
    return text if len(text) <= DESCRIPTION_MAX else text[: DESCRIPTION_MAX - 1] + "…"


def checklist_description(checklist: Sequence[ChecklistItem], heading: str, note: str | None = None) -> str:
    """A combined task's Description: the checklist as plain text under its heading (the action's body),
    a note, and the state line. The state line is never cut off: a text too long is shortened instead.
    """
    text = plain_checklist(checklist, heading)
    line = items_line([c.item for c in checklist])
    tail = ("\n\n" + note if note else "") + "\n\n" + line
    room = DESCRIPTION_MAX - len(tail)
    body = text.rstrip() if len(text.rstrip()) <= room else text[: room - 1] + "…"
    return body + tail


def local_due_date(due_at: datetime, time_zone: str | None, default_zone: str) -> str:
    """``ActivityDate``: the day ``due_at`` falls on in the owner's time zone."""
    return due_at.astimezone(zone(time_zone, default_zone)).date().isoformat()


def _subject(text: str) -> str:
    return text if len(text) <= SUBJECT_MAX else text[: SUBJECT_MAX - 1] + "…"


def create_task_record(
    action: CreateTask, owner_time_zone: str | None, config: PayloadConfig
) -> dict[str, Any]:
    text = (
        checklist_description(action.items, action.body)
        if action.items
        else description(action.body, action.explanation)
    )
    record: dict[str, Any] = {
        "attributes": {"type": "Task"},
        "Subject": _subject(action.subject),
        "Description": text,
        "ActivityDate": local_due_date(action.due_at, owner_time_zone, config.default_time_zone),
        "Status": config.open_task_status,
        "TaskSubtype": "Task",
        "Type": TASK_TYPES[action.task_type],
        "Priority": PRIORITIES[action.priority],
        "WhatId": action.deal_id,
        config.task_key_field: action.key,
        config.task_rule_field: action.rule_id,
    }
    if action.owner_id:
        record["OwnerId"] = action.owner_id
    if action.contact_id:
        record["WhoId"] = action.contact_id
    return record


def update_task_record(
    action: UpdateTask, owner_time_zone: str | None, config: PayloadConfig
) -> dict[str, Any]:
    record: dict[str, Any] = {"attributes": {"type": "Task"}, "id": action.task_id}
    if action.subject is not None:
        record["Subject"] = _subject(action.subject)
    if action.items:
        record["Description"] = checklist_description(action.items, action.body or "")
        record[config.task_rule_field] = action.rule_id
    elif action.body is not None:
        record["Description"] = description(action.body, action.explanation)
    if action.task_type is not None:
        record["Type"] = TASK_TYPES[action.task_type]
    if action.due_at is not None:
        record["ActivityDate"] = local_due_date(action.due_at, owner_time_zone, config.default_time_zone)
    if action.priority is not None:
        record["Priority"] = PRIORITIES[action.priority]
    return record


def close_task_record(task_id: str, config: PayloadConfig, action: CloseTask | None = None) -> dict[str, Any]:
    """Closed status; a combined task also gets its final checklist (every item ticked, and why)."""
    record = {"attributes": {"type": "Task"}, "id": task_id, "Status": config.closed_task_status}
    if action is not None and action.items:
        note = f"Closed by crm-followup: {CLOSE_NOTES[action.reason]}."
        record["Description"] = checklist_description(action.items, action.body or "", note)
    return record


CLOSE_NOTES: Mapping[CloseReason, str] = {
    CloseReason.SETTLED: "what this task asked for is now recorded in Salesforce",
    CloseReason.SUPERSEDED: "a newer signal or task replaced it",
    CloseReason.EXPIRED: "nobody acted on it in time",
    CloseReason.DEAL_STOPPED: "the deal was closed or moved to nurture",
}


def close_rep_task_record(
    task_id: str, reason: CloseReason, why: str, description: str | None, config: PayloadConfig
) -> dict[str, Any]:
    """Somebody's own Task closed (``nurture.close_rep_tasks``): the reason below its description, and
    never our key or rule fields (it is not our task)."""
    record: dict[str, Any] = {
        "attributes": {"type": "Task"},
        "id": task_id,
        "Status": config.closed_task_status,
    }
    note = f"Closed by crm-followup: {CLOSE_NOTES[reason]} ({why})."
    text = "\n\n".join(p for p in ((description or "").rstrip(), note) if p)
    if len(text) <= DESCRIPTION_MAX:  # a description already near the limit is left as it is, never cut
        record["Description"] = text
    return record


def crm_field_name(name: str, config: PayloadConfig) -> str:
    """A ``DealField`` value mapped to its Opportunity field; any other name is a CRM field already."""
    try:
        return config.opportunity_fields[DealField(name)]
    except ValueError:
        return name


def opportunity_changes(action: ChangeStage | SetDealFields, config: PayloadConfig) -> dict[str, Any]:
    """The Opportunity fields an action writes (without ``id``/``attributes``)."""
    if isinstance(action, ChangeStage):
        changes: dict[str, Any] = {"StageName": config.stage_names.get(action.stage_id, action.stage_id)}
        if action.close_reason is not None:
            changes[config.opportunity_fields[DealField.CLOSE_REASON]] = action.close_reason
        return changes
    return {crm_field_name(str(k), config): format_value(v) for k, v in action.fields.items()}


def campaign_member_record(campaign_id: str, contact_id: str, status: str) -> dict[str, Any]:
    return {
        "attributes": {"type": "CampaignMember"},
        "CampaignId": campaign_id,
        "ContactId": contact_id,
        "Status": status,
    }
