"""A combined task's checklist in the CRM: the marker line that keeps its state, and its HTML rendering.

A combined task (``tasks.combine``, ``policies.combine``) is one task with one item per rule. The engine
gives its items and a heading (the action's ``body``); each connector renders them as its CRM shows task
text: plain (``plain_checklist``) or HTML (``html_checklist``). The state of the items lives with the
task, next to the idempotency key, as one line of its body (HubSpot ``hs_task_body``) or description
(Salesforce ``Description``):

    crm-followup items: agreed_interval cf-0a1b… 2026-03-04T10:00:00Z 2026-03-04T10:00:00Z open; next_step …

Each item is ``<rule id> <key> <added> <due> <state>``, the moments in UTC (ISO 8601), the state ``open``
or ``<close reason>@<date>`` (``settled@2026-03-05``: done on that day, in the owner's calendar). The line
uses no character that HTML escapes, so it reads back the same from a plain-text and from an HTML body;
tags around it are ignored. A task without the line is a task of one rule (docs/crm-fields.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from html import escape

from policies.model import CLOSED_ITEM_WORDS, ChecklistItem, CloseReason, TaskItem

MARKER = "crm-followup items:"
_LINE = re.compile(r"crm-followup items:([^\n<]*)")
_ITEM = re.compile(
    r"([a-z][a-z0-9_]*) (cf-[0-9a-f]{20}) (\S+) (\S+) "
    r"(open|settled|superseded|expired|deal_stopped)(?:@(\d{4}-\d{2}-\d{2}))?"
)
_TAGS = re.compile(r"<[^>]+>")


def _moment(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def items_line(items: Sequence[TaskItem]) -> str:
    """The marker line for a checklist's state."""
    parts = []
    for item in items:
        state = "open" if item.closed is None else item.closed.value
        if item.closed is not None and item.closed_on is not None:
            state += "@" + item.closed_on.isoformat()
        parts.append(f"{item.rule_id} {item.key} {_moment(item.added_at)} {_moment(item.due_at)} {state}")
    return f"{MARKER} " + "; ".join(parts)


def parse_items(body: object) -> tuple[TaskItem, ...]:
    """The checklist state a task body carries (the last marker line), or ``()`` for a task of one rule.

    An item whose moments do not parse is left out (the rest of the checklist still counts).
    """
    if not body or MARKER not in str(body):
        return ()
    lines = _LINE.findall(_TAGS.sub("\n", str(body)))
    if not lines:
        return ()
    items = []
    for rule_id, key, added, due, state, closed_on in _ITEM.findall(lines[-1]):
        try:
            added_at = datetime.fromisoformat(added)
            due_at = datetime.fromisoformat(due)
            day = date.fromisoformat(closed_on) if closed_on else None
        except ValueError:
            continue
        if added_at.tzinfo is None or due_at.tzinfo is None:
            continue
        closed = None if state == "open" else CloseReason(state)
        items.append(TaskItem(rule_id, key, added_at, due_at, closed, day if closed else None))
    return tuple(items)


def _closed(item: TaskItem) -> str:
    """How a closed item reads: ``done 2026-03-05``."""
    words = CLOSED_ITEM_WORDS[item.closed] if item.closed is not None else "open"
    return f"{words} {item.closed_on.isoformat()}" if item.closed_on else words


def plain_checklist(checklist: Sequence[ChecklistItem], heading: str) -> str:
    """The checklist as plain text for a CRM that shows task text as it is (Salesforce ``Description``):
    the heading, then ``[ ]`` open items with their instructions, why and evidence, ``[x]`` closed ones."""
    lines = [heading, ""]
    for entry in checklist:
        if entry.item.closed is not None:
            lines.append(f"[x] {entry.title} ({_closed(entry.item)})")
            continue
        lines.append(f"[ ] {entry.title}")
        if entry.detail:
            lines.append(f"    {entry.detail}")
        if entry.why:
            lines.append(f"    Why: {entry.why}")
        lines.extend(f"    - {e.label}: {e.value}" for e in entry.evidence)
    return "\n".join(lines)


def html_checklist(checklist: Sequence[ChecklistItem], heading: str) -> str:
    """The checklist as HTML for a task body that a CRM shows as rich text (HubSpot ``hs_task_body``)."""
    entries = []
    for entry in checklist:
        item = entry.item
        title = escape(entry.title)
        if item.closed is not None:
            entries.append(f"<li>&#9745; <s>{title}</s> ({_closed(item)})</li>")
            continue
        lines = [f"&#9744; <strong>{title}</strong>"]
        if entry.detail:
            lines.append(escape(entry.detail))
        if entry.why:
            lines.append(f"<em>Why:</em> {escape(entry.why)}")
        facts = "".join(f"<li>{escape(e.label)}: {escape(e.value)}</li>" for e in entry.evidence)
        entries.append("<li>" + "<br>".join(lines) + (f"<ul>{facts}</ul>" if facts else "") + "</li>")
    return f"<p>{escape(heading)}</p><ul>{''.join(entries)}</ul>"
