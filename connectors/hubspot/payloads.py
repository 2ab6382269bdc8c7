"""Pure functions from actions to HubSpot write payloads (task inputs, task and deal properties).

The idempotency key goes on the last line of ``hs_task_body`` (``crm-followup key: cf-… rule: …``,
docs/crm-fields.md), so a task can be found again in HubSpot itself; every rewrite keeps it last. A
combined task's body is HTML (HubSpot shows task bodies as rich text): its checklist as a list, then the
checklist's state (``connectors.checklist``) and the key line, each in a paragraph of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from connectors.checklist import html_checklist, items_line
from connectors.hubspot.mapping import KEY_LINE
from connectors.hubspot.values import format_value, iso_ms
from policies.model import (
    Channel,
    ChecklistItem,
    CloseReason,
    CreateTask,
    DealField,
    FieldValue,
    FollowupState,
    Priority,
    Readiness,
    TaskType,
    UpdateTask,
)

# Association type ids (HUBSPOT_DEFINED, https://developers.hubspot.com/docs/api/crm/associations).
TASK_TO_DEAL = 216
TASK_TO_CONTACT = 204

HUBSPOT_TASK_TYPES: Mapping[TaskType, str] = {
    TaskType.CALL: "CALL",
    TaskType.EMAIL: "EMAIL",
    TaskType.MEETING: "TODO",  # HubSpot tasks have no meeting type
    TaskType.TODO: "TODO",
}

CLOSE_NOTES: Mapping[CloseReason, str] = {
    CloseReason.SETTLED: "what this task asked for is now recorded in HubSpot",
    CloseReason.SUPERSEDED: "a newer signal or task replaced it",
    CloseReason.EXPIRED: "nobody acted on it in time",
    CloseReason.DEAL_STOPPED: "the deal was closed or moved to nurture",
}


def key_line(key: str, rule_id: str) -> str:
    return f"crm-followup key: {key} rule: {rule_id}"


def strip_key_line(body: str) -> str:
    """A task body without our key line (and the blank lines before it)."""
    return KEY_LINE.sub("", body).rstrip()


def task_body(
    text: str, explanation_summary: str, evidence: Iterable[tuple[str, str]], key: str, rule_id: str
) -> str:
    """The rep-facing body: the action's text, why, the evidence, and the key line last."""
    parts = [text.strip()] if text.strip() else []
    if explanation_summary and explanation_summary not in text:
        parts.append(f"Why: {explanation_summary}")
    lines = [f"- {label}: {value}" for label, value in evidence if f"{label}: {value}" not in text]
    if lines:
        parts.append("Evidence:\n" + "\n".join(lines))
    parts.append(key_line(key, rule_id))
    return "\n\n".join(parts)


def checklist_body(
    checklist: Sequence[ChecklistItem], text: str, key: str, rule_id: str, note: str | None = None
) -> str:
    """A combined task's HTML body: the heading (``text``, the action's body), the checklist, an optional
    closing note, the checklist's state and the key line last."""
    parts = [html_checklist(checklist, text.strip())]
    if note:
        parts.append(f"<p>{escape(note)}</p>")
    parts.append(f"<p>{items_line([c.item for c in checklist])}</p>")
    parts.append(f"<p>{key_line(key, rule_id)}</p>")
    return "".join(parts)


def task_create_input(action: CreateTask) -> dict[str, Any]:
    """A batch-create input for one CreateTask: properties, the deal (216) and contact (204) associations."""
    evidence = [(e.label, e.value) for e in action.explanation.evidence]
    if action.items:
        body = checklist_body(action.items, action.body, action.key, action.rule_id)
    else:
        body = task_body(action.body, action.explanation.summary, evidence, action.key, action.rule_id)
    properties = {
        "hs_timestamp": iso_ms(action.due_at),
        "hs_task_subject": action.subject,
        "hs_task_body": body,
        "hs_task_status": "NOT_STARTED",
        "hs_task_priority": action.priority.value.upper(),
        "hs_task_type": HUBSPOT_TASK_TYPES[action.task_type],
    }
    if action.owner_id:
        properties["hubspot_owner_id"] = action.owner_id
    associations = [_association(action.deal_id, TASK_TO_DEAL)]
    if action.contact_id:
        associations.append(_association(action.contact_id, TASK_TO_CONTACT))
    return {"properties": properties, "associations": associations, "objectWriteTraceId": action.key}


def _association(to_id: str, type_id: int) -> dict[str, Any]:
    return {
        "to": {"id": to_id},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
    }


def task_update_properties(action: UpdateTask, current_body: str | None) -> dict[str, str]:
    """The task properties an UpdateTask changes; the key line stays the body's last line."""
    properties: dict[str, str] = {}
    if action.due_at is not None:
        properties["hs_timestamp"] = iso_ms(action.due_at)
    if action.subject is not None:
        properties["hs_task_subject"] = action.subject
    if action.priority is not None:
        properties["hs_task_priority"] = Priority(action.priority).value.upper()
    if action.task_type is not None:
        properties["hs_task_type"] = HUBSPOT_TASK_TYPES[action.task_type]
    if action.items:
        properties["hs_task_body"] = checklist_body(
            action.items, action.body or "", action.task_key, action.rule_id
        )
    elif action.body is not None or current_body is None:
        text = action.body if action.body is not None else ""
        evidence = [(e.label, e.value) for e in action.explanation.evidence]
        properties["hs_task_body"] = task_body(
            text, action.explanation.summary, evidence, action.task_key, action.rule_id
        )
    return properties


def task_close_properties(
    reason: CloseReason,
    current_body: str,
    key: str,
    rule_id: str,
    checklist: Sequence[ChecklistItem] = (),
    text: str | None = None,
) -> dict[str, str]:
    """COMPLETED, with a line saying why crm-followup closed it above the key line (a combined task: its
    final checklist, ``text`` giving the heading)."""
    note = f"Closed by crm-followup: {CLOSE_NOTES[reason]}."
    if checklist:
        body = checklist_body(checklist, text or "", key, rule_id, note)
        return {"hs_task_status": "COMPLETED", "hs_task_body": body}
    text = strip_key_line(current_body)
    body = "\n\n".join(p for p in (text, note, key_line(key, rule_id)) if p)
    return {"hs_task_status": "COMPLETED", "hs_task_body": body}


def rep_task_close_properties(reason: CloseReason, why: str, current_body: str) -> dict[str, str]:
    """COMPLETED, with a line saying why below somebody's own text; never our key line (not our task)."""
    note = f"Closed by crm-followup: {CLOSE_NOTES[reason]} ({why})."
    return {
        "hs_task_status": "COMPLETED",
        "hs_task_body": "\n\n".join(p for p in (current_body.rstrip(), note) if p),
    }


def deal_write_properties(
    fields: Mapping[str, FieldValue], field_names: Mapping[DealField, str]
) -> dict[str, str]:
    """Deal properties for SetDealFields: canonical DealField names mapped, other names written verbatim."""
    out: dict[str, str] = {}
    for name, value in fields.items():
        try:
            target = field_names[DealField(name)]
        except ValueError:
            target = name
        out[target] = format_value(
            value.value if isinstance(value, Channel | Readiness | FollowupState) else value
        )
    return out
