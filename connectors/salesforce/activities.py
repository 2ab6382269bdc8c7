"""Pure reductions of Tasks, Events and EmailMessages to ``Activity`` and ``AutoTask`` values.

* Tasks: a closed Task is a past touch; ``TaskSubtype``/``CallType``/``CallDisposition`` say what kind and
  how it went. Open Tasks are to-dos, not touches. A Task carrying our idempotency key is an ``AutoTask``
  (and, once closed, also a touch marked ``created_by_followup``).
* Events are meetings: in the future ``scheduled``, in the past ``completed`` unless the subject or the
  start of the description says it was cancelled ("Canceled: ..." as calendar sync writes it),
  rescheduled or a no-show (Salesforce has no standard event outcome field).
* EmailMessages give the direction (``Incoming``) and bounces; the Task that Enhanced Email logs beside
  each message (``EmailMessage.ActivityId``) gives the contact.
* A touch logged on a contact counts for every deal that contact has a role on (``contact_touches``), as
  in the HubSpot connector: a reply on one deal is a reply from the buyer, whatever record it was logged on.

A timestamp that is unreadable or out of bounds raises ``BadValue`` naming ``<object>:<id>.<field>``: the
deal it belongs to is rejected rather than judged without the touch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from connectors.checklist import parse_items
from connectors.salesforce.values import Record, read_date, read_datetime, token, zone
from connectors.values import BadValue
from policies.model import Activity, ActivityKind, AutoTask, Direction, Outcome, RepTask, TaskType

CONTACT_PREFIX = "003"
EVENT_PREFIX = "00U"


_DISPOSITIONS: tuple[tuple[tuple[str, ...], Outcome], ...] = (
    (("wrong",), Outcome.WRONG_NUMBER),
    (("voicemail", "voice_mail", "left_message", "left_a_message"), Outcome.VOICEMAIL),
    (("no_answer", "not_answered", "unanswered", "no_response"), Outcome.NO_ANSWER),
    (("busy",), Outcome.BUSY),
    (("connected", "spoke", "talked", "reached", "conversation"), Outcome.CONNECTED),
)
_EVENT_OUTCOMES: tuple[tuple[tuple[str, ...], Outcome], ...] = (
    (("no_show", "noshow", "no_showed", "did_not_show"), Outcome.NO_SHOW),
    (("cancel",), Outcome.CANCELLED),
    (("reschedul",), Outcome.RESCHEDULED),
)


def call_outcome(disposition: Any) -> Outcome:
    """A free-text ``CallDisposition`` reduced to an ``Outcome``."""
    text = token(disposition)
    for needles, outcome in _DISPOSITIONS:
        if any(n in text for n in needles):
            return outcome
    return Outcome.UNKNOWN


def _contact_ids(who_id: Any) -> tuple[str, ...]:
    return (str(who_id),) if who_id and str(who_id).startswith(CONTACT_PREFIX) else ()


def activity_from_task(task: Record, *, key_field: str) -> Activity | None:
    """A closed Task as a touch; None for open Tasks (to-dos, not touches)."""
    if not task.get("IsClosed"):
        return None
    where = f"Task:{task.get('Id')}."
    occurred = read_datetime(where + "CompletedDateTime", task.get("CompletedDateTime")) or read_datetime(
        where + "CreatedDate", task.get("CreatedDate")
    )
    if occurred is None:
        return None
    subtype = token(task.get("TaskSubtype"))
    kind_hint = token(task.get("Type"))
    ours = bool(task.get(key_field))
    kind, direction, outcome = ActivityKind.TASK, Direction.OUTBOUND, Outcome.COMPLETED
    if subtype == "call" or (not ours and kind_hint == "call") or task.get("CallType"):
        kind, outcome = ActivityKind.CALL, call_outcome(task.get("CallDisposition"))
        if token(task.get("CallType")) == "inbound":
            direction = Direction.INBOUND
    elif subtype in ("email", "listemail") or (not ours and kind_hint == "email"):
        kind, outcome = ActivityKind.EMAIL, Outcome.SENT
    return Activity(
        id=str(task["Id"]),
        kind=kind,
        direction=direction,
        occurred_at=occurred,
        outcome=outcome,
        contact_ids=_contact_ids(task.get("WhoId")),
        created_by_followup=ours,
    )


def activity_from_event(event: Record, *, now: datetime) -> Activity | None:
    start = read_datetime(
        f"Event:{event.get('Id')}.StartDateTime", event.get("StartDateTime") or event.get("ActivityDateTime")
    )
    if start is None:
        return None
    # calendar sync prefixes cancelled meetings' subjects ("Canceled: ..."); reps note no-shows first thing
    description = event.get("Description")
    text = token(event.get("Subject")) + " " + token(description[:40] if isinstance(description, str) else "")
    outcome = Outcome.SCHEDULED if start > now else Outcome.COMPLETED
    for needles, candidate in _EVENT_OUTCOMES:
        if any(n in text for n in needles):
            outcome = candidate
            break
    return Activity(
        id=str(event["Id"]),
        kind=ActivityKind.MEETING,
        direction=Direction.OUTBOUND,
        occurred_at=start,
        outcome=outcome,
        contact_ids=_contact_ids(event.get("WhoId")),
    )


def activity_from_email(email: Record) -> Activity | None:
    occurred = read_datetime(f"EmailMessage:{email.get('Id')}.MessageDate", email.get("MessageDate"))
    if occurred is None:
        return None
    incoming = bool(email.get("Incoming"))
    outcome = Outcome.REPLIED if incoming else Outcome.SENT
    if email.get("IsBounced"):
        outcome = Outcome.BOUNCED
    return Activity(
        id=str(email["Id"]),
        kind=ActivityKind.EMAIL,
        direction=Direction.INBOUND if incoming else Direction.OUTBOUND,
        occurred_at=occurred,
        outcome=outcome,
    )


def task_type_of(task: Record) -> TaskType:
    for value in (task.get("Type"), task.get("TaskSubtype")):
        name = token(value)
        if name in ("call", "email", "meeting"):
            return TaskType(name)
    return TaskType.TODO


def due_at_of(activity_date: date, time_zone: str | None, default_zone: str) -> datetime:
    """A Task's due date as the last second of that day in the owner's zone (Salesforce's 'overdue')."""
    local_end = datetime.combine(
        activity_date + timedelta(days=1), time(0), tzinfo=zone(time_zone, default_zone)
    )
    return (local_end - timedelta(seconds=1)).astimezone(UTC)


def auto_task_from_task(
    task: Record, *, key_field: str, rule_field: str, owner_time_zone: str | None, default_zone: str
) -> AutoTask | None:
    """A Task crm-followup created (it carries our key), else None."""
    key = task.get(key_field)
    if not key:
        return None
    where = f"Task:{task.get('Id')}."
    created = read_datetime(where + "CreatedDate", task.get("CreatedDate"))
    if created is None:
        return None
    owner_id = task.get("OwnerId")
    activity_date = read_date(where + "ActivityDate", task.get("ActivityDate"))
    due = due_at_of(activity_date, owner_time_zone, default_zone) if activity_date else created
    return AutoTask(
        id=str(task["Id"]),
        key=str(key),
        rule_id=str(task.get(rule_field) or ""),
        created_at=created,
        due_at=due,
        is_open=not task.get("IsClosed"),
        owner_id=str(owner_id) if owner_id else None,
        task_type=task_type_of(task),
        subject=str(task.get("Subject") or ""),
        items=parse_items(task.get("Description")),
    )


# Task subtypes that are follow-ups somebody plans (not list e-mails, cadence steps or LinkedIn actions).
REP_TASK_SUBTYPES = frozenset({"", "task", "call", "email"})


def rep_task_from_task(
    task: Record, *, key_field: str, owner_time_zone: str | None, default_zone: str
) -> RepTask | None:
    """An open follow-up Task somebody set (``TaskSubtype`` Task, Call or Email, not ours), or None.

    Its due date is informational: an unreadable ``ActivityDate`` is left out, never a reason to reject
    the deal."""
    if task.get(key_field) or task.get("IsClosed") or token(task.get("TaskSubtype")) not in REP_TASK_SUBTYPES:
        return None
    owner_id = task.get("OwnerId")
    try:
        activity_date = read_date(f"Task:{task.get('Id')}.ActivityDate", task.get("ActivityDate"))
    except BadValue:
        activity_date = None
    return RepTask(
        id=str(task["Id"]),
        owner_id=str(owner_id) if owner_id else None,
        task_type=task_type_of(task),
        subject=str(task.get("Subject") or ""),
        due_at=due_at_of(activity_date, owner_time_zone, default_zone) if activity_date else None,
    )


def touch_of_row(
    row: Record, *, key_field: str, now: datetime, mirrors: Mapping[str, Record]
) -> Activity | None:
    """The touch one Task or Event row stands for; an e-mail Task becomes its EmailMessage's touch."""
    row_id = str(row.get("Id") or "")
    kind = str((row.get("attributes") or {}).get("type") or "")
    if kind == "Event" or row_id.startswith(EVENT_PREFIX):
        return activity_from_event(row, now=now)
    mirror = mirrors.get(row_id)
    if mirror is not None:
        email = activity_from_email(mirror)
        return replace(email, contact_ids=_contact_ids(row.get("WhoId"))) if email is not None else None
    return activity_from_task(row, key_field=key_field)


def contact_touches(
    rows: Iterable[Record], *, key_field: str, now: datetime, mirrors: Mapping[str, Record]
) -> list[tuple[str, str | None, Activity | BadValue]]:
    """(contact id, related record id, touch) for every Task/Event row logged on a contact.

    A row whose timestamp cannot be read gives its ``BadValue`` instead of a touch: every deal of that
    contact is then rejected with it (``mapping.add_contact_touches``), as the deal it was logged on is.
    """
    found: list[tuple[str, str | None, Activity | BadValue]] = []
    for row in rows:
        who = row.get("WhoId")
        if not who or not str(who).startswith(CONTACT_PREFIX):
            continue
        what = row.get("WhatId")
        try:
            touch: Activity | BadValue | None = touch_of_row(
                row, key_field=key_field, now=now, mirrors=mirrors
            )
        except BadValue as bad:
            touch = bad
        if touch is not None:
            found.append((str(who), str(what) if what else None, touch))
    return found
