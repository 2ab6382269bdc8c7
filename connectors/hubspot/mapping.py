"""Pure functions from HubSpot's wire shapes to the domain model (the write direction is payloads.py).

Inputs are the JSON objects HubSpot sends (https://developers.hubspot.com/docs/api/crm/deals: ``{"id",
"properties": {name: string|null}, "createdAt", "updatedAt", "archived"}``; v4 association results; owners;
pipelines). Every property value arrives as a string or null; datetimes as ISO-8601 UTC or, in some payloads,
millisecond epochs. Nothing here does I/O, reads a clock or logs: that keeps the boundary testable on plain
dicts.

Our tasks carry the action's idempotency key as the last line of ``hs_task_body``
(``crm-followup key: cf-<20 hex> rule: <rule_id>``, docs/crm-fields.md); HubSpot may turn the body into
HTML, so the line is found with a tolerant pattern and tags are ignored.

A deal is mapped whole or rejected whole: a value out of bounds, unreadable or of the wrong type
(``connectors.values``), in the deal or in one of its activities or tasks, raises ``SkipRecord`` naming the
deal, the property and the reason; nothing is read as "not set" that was set (docs/crm-fields.md, "Bounds").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from html.parser import HTMLParser
from typing import Any

from connectors import values as bounds
from connectors.base import TaskView
from connectors.checklist import parse_items
from connectors.hubspot.values import (
    hubspot_time_zone,
    parse_datetime,
    parse_float,
    read_date,
    read_datetime,
    typed_value,
)
from connectors.values import WRONG_TYPE, BadValue, read_number
from policies import model

Payload = Mapping[str, Any]


ENGAGEMENT_TYPES: tuple[str, ...] = ("calls", "emails", "meetings", "notes", "tasks")

DEAL_BASE_PROPERTIES: tuple[str, ...] = (
    "dealname",
    "pipeline",
    "dealstage",
    "hubspot_owner_id",
    "amount",
    "deal_currency_code",
    "closedate",
    "createdate",
    "hs_lastmodifieddate",
    "hs_object_id",
)

CONTACT_PROPERTIES: tuple[str, ...] = ("firstname", "lastname", "email", "hs_timezone", "lastmodifieddate")

ENGAGEMENT_PROPERTIES: Mapping[str, tuple[str, ...]] = {
    "calls": (
        "hs_timestamp",
        "hs_call_direction",
        "hs_call_disposition",
        "hs_call_status",
        "hs_lastmodifieddate",
    ),
    "emails": ("hs_timestamp", "hs_email_direction", "hs_email_status", "hs_lastmodifieddate"),
    "meetings": ("hs_timestamp", "hs_meeting_start_time", "hs_meeting_outcome", "hs_lastmodifieddate"),
    "notes": ("hs_timestamp", "hs_lastmodifieddate"),
    "tasks": (
        "hs_timestamp",
        "hs_task_status",
        "hs_task_body",
        "hs_task_subject",
        "hs_task_type",
        "hs_task_completion_date",
        "hubspot_owner_id",
        "hs_createdate",
        "hs_lastmodifieddate",
    ),
}

# Default call dispositions (https://developers.hubspot.com/docs/guides/api/crm/engagements/calls); custom
# ones map to UNKNOWN.
CALL_DISPOSITIONS: Mapping[str, model.Outcome] = {
    "9d9162e7-6cf3-4944-bf63-4dff82258764": model.Outcome.BUSY,
    "f240bbac-87c9-4f6e-bf70-924b57d47db7": model.Outcome.CONNECTED,
    "a4c4c377-d246-4b32-a13b-75a56a4cd0ff": model.Outcome.CONNECTED,  # left live message: somebody answered
    "b2cf5968-551e-4856-9783-52b3da59a7d0": model.Outcome.VOICEMAIL,
    "73a0d17f-1163-4015-bdd5-ec830791da20": model.Outcome.NO_ANSWER,
    "17b47fee-58de-441e-a44c-c6300d46f273": model.Outcome.WRONG_NUMBER,
}
CALL_STATUSES: Mapping[str, model.Outcome] = {
    "BUSY": model.Outcome.BUSY,
    "NO_ANSWER": model.Outcome.NO_ANSWER,
    "FAILED": model.Outcome.NO_ANSWER,
}
MEETING_OUTCOMES: Mapping[str, model.Outcome] = {
    "SCHEDULED": model.Outcome.SCHEDULED,
    "COMPLETED": model.Outcome.COMPLETED,
    "RESCHEDULED": model.Outcome.RESCHEDULED,
    "NO_SHOW": model.Outcome.NO_SHOW,
    "CANCELED": model.Outcome.CANCELLED,
    "CANCELLED": model.Outcome.CANCELLED,
}
EMAIL_STATUSES: Mapping[str, model.Outcome] = {
    "BOUNCED": model.Outcome.BOUNCED,
    "FAILED": model.Outcome.BOUNCED,
    "SENT": model.Outcome.SENT,
    "SCHEDULED": model.Outcome.SCHEDULED,
    "SENDING": model.Outcome.SENT,
}
KIND_BY_TYPE: Mapping[str, model.ActivityKind] = {
    "calls": model.ActivityKind.CALL,
    "emails": model.ActivityKind.EMAIL,
    "meetings": model.ActivityKind.MEETING,
    "notes": model.ActivityKind.NOTE,
    "tasks": model.ActivityKind.TASK,
}
TASK_TYPES_BACK: Mapping[str, model.TaskType] = {"CALL": model.TaskType.CALL, "EMAIL": model.TaskType.EMAIL}

KEY_LINE = re.compile(r"crm-followup key: (cf-[0-9a-f]{20}) rule: ([^\s<]+)")
_TAGS = re.compile(r"<[^>]+>")


# -------------------------------------------------------------------------------------------- directory


def owner_from_hubspot(payload: Payload, time_zones: Mapping[str, str] | None = None) -> model.Owner:
    """An owner; HubSpot has no owner time zone: it comes from the settings (by id or email) or stays None."""
    owner_id = str(payload["id"])
    email = payload.get("email") or None
    zones = time_zones or {}
    zone = zones.get(owner_id) or (zones.get(email) if email else None)
    name = " ".join(p for p in (payload.get("firstName"), payload.get("lastName")) if p)
    teams = payload.get("teams") or []
    team = next((t.get("name") for t in teams if t.get("primary")), None) or (
        teams[0].get("name") if teams else None
    )
    return model.Owner(
        id=owner_id,
        name=name or (email or owner_id),
        email=email,
        time_zone=zone,
        team=team,
        active=not bool(payload.get("archived")),
    )


def pipeline_from_hubspot(payload: Payload) -> model.Pipeline:
    """A deal pipeline; stage ``metadata`` values are strings, e.g. ``{"isClosed": "true"}``."""
    pipeline_id = str(payload["id"])
    stages = []
    for raw in sorted(payload.get("stages") or [], key=lambda s: s.get("displayOrder") or 0):
        if raw.get("archived"):
            continue
        metadata = raw.get("metadata") or {}
        probability = parse_float(metadata.get("probability"))
        is_closed = str(metadata.get("isClosed", "false")).lower() == "true"
        stages.append(
            model.Stage(
                id=str(raw["id"]),
                label=str(raw.get("label") or raw["id"]),
                pipeline_id=pipeline_id,
                display_order=int(raw.get("displayOrder") or 0),
                is_closed=is_closed,
                is_won=is_closed and probability is not None and probability >= 1.0,
                probability=probability,
            )
        )
    return model.Pipeline(
        id=pipeline_id, label=str(payload.get("label") or pipeline_id), stages=tuple(stages)
    )


# ----------------------------------------------------------------------------------------------- deals


def roles_from_labels(
    labels: Iterable[str | None], role_labels: Mapping[str, model.ContactRole]
) -> frozenset[model.ContactRole]:
    """Association labels (``"Decision maker"``) as roles, ignoring case; unknown labels are dropped."""
    folded = {k.casefold(): v for k, v in role_labels.items()}
    return frozenset(
        folded[label.casefold()]
        for label in labels
        if isinstance(label, str) and label and label.casefold() in folded
    )


def contact_from_hubspot(
    payload: Payload,
    labels: Iterable[str | None],
    role_labels: Mapping[str, model.ContactRole],
    primary_label: str | None = None,
) -> model.Contact:
    props = _properties(payload)
    label_list = [label for label in labels if isinstance(label, str) and label]
    name = " ".join(p for p in (_plain(props.get("firstname")), _plain(props.get("lastname"))) if p)
    is_primary = primary_label is not None and any(
        label.casefold() == primary_label.casefold() for label in label_list
    )
    return model.Contact(
        id=str(payload["id"]),
        name=name,
        email=_plain(props.get("email")),
        roles=roles_from_labels(label_list, role_labels),
        time_zone=hubspot_time_zone(props.get("hs_timezone")),
        is_primary=is_primary,
    )


def association_labels(association: Payload) -> list[str | None]:
    """The labels on one v4 association result entry (``{"toObjectId", "associationTypes": [...]}``)."""
    return [t.get("label") for t in association.get("associationTypes") or []]


def modified_stamp(payload: Payload) -> datetime | None:
    """A record's modification stamp: ``hs_lastmodifieddate`` (also in write answers), else ``updatedAt``;
    None when neither reads as a datetime (then it never matches a stamp the worker remembers)."""
    props = payload.get("properties") or {}
    return parse_datetime(props.get("hs_lastmodifieddate")) or parse_datetime(payload.get("updatedAt"))


def parse_task_key(body: object) -> tuple[str, str] | None:
    """The (key, rule id) crm-followup wrote into a task body, or None for somebody else's task."""
    if not body:
        return None
    matches = KEY_LINE.findall(_TAGS.sub("\n", str(body)))
    return (matches[-1][0], matches[-1][1]) if matches else None


TASK_VIEW_PROPERTIES = ["hs_task_subject", "hs_task_body", "hs_timestamp", "hubspot_owner_id"]


def task_view(payload: Payload) -> TaskView | None:
    """One of our tasks (found by its key line) as a rep reads it; None for somebody else's task."""
    props = payload.get("properties") or {}
    body = str(props.get("hs_task_body") or "")
    if parse_task_key(body) is None:
        return None
    owner = props.get("hubspot_owner_id")
    return TaskView(
        str(props.get("hs_task_subject") or ""),
        parse_datetime(props.get("hs_timestamp")),
        str(owner) if owner else None,
        plain_text(body),
    )


def plain_text(body: str) -> str:
    """HubSpot task bodies are HTML; this is the text a rep reads: a line per paragraph, line break and list
    item, a nested list's items indented under their item."""
    reader = _PlainText()
    reader.feed(body)
    reader.close()
    return "".join(reader.text).strip("\n")


class _PlainText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self._depth = 0  # nested <ul>/<ol>

    def _line(self) -> None:
        if self.text and not self.text[-1].endswith("\n"):
            self.text.append("\n")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("ul", "ol"):
            self._depth += 1
            self._line()
        elif tag == "li":
            self._line()
            self.text.append("  " * max(0, self._depth - 1) + "• ")
        elif tag == "br":
            self.text.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("ul", "ol"):
            self._depth = max(0, self._depth - 1)
        elif tag in ("p", "li"):
            self._line()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def activity_from_hubspot(
    object_type: str, payload: Payload, contact_ids: Iterable[str] = ()
) -> model.Activity | None:
    """One engagement as an Activity; None for open tasks (they are to-dos, not touches) and undated ones.

    ``BadValue`` (field ``<type>:<id>.<property>``) for a timestamp that is unreadable or out of bounds.
    """
    props = _properties(payload)
    kind = KIND_BY_TYPE[object_type]
    where = f"{object_type}:{payload['id']}."
    occurred = read_datetime(where + "hs_timestamp", props.get("hs_timestamp"))
    direction = model.Direction.OUTBOUND
    outcome = model.Outcome.UNKNOWN
    created_by_followup = False
    if object_type == "calls":
        if _upper(props.get("hs_call_direction")) == "INBOUND":
            direction = model.Direction.INBOUND
        outcome = CALL_DISPOSITIONS.get(_plain(props.get("hs_call_disposition")) or "", model.Outcome.UNKNOWN)
        if outcome is model.Outcome.UNKNOWN:
            outcome = CALL_STATUSES.get(_upper(props.get("hs_call_status")), model.Outcome.UNKNOWN)
    elif object_type == "emails":
        email_direction = _upper(props.get("hs_email_direction"))
        if email_direction == "INCOMING_EMAIL":
            direction, outcome = model.Direction.INBOUND, model.Outcome.REPLIED
        else:
            outcome = EMAIL_STATUSES.get(_upper(props.get("hs_email_status")), model.Outcome.SENT)
    elif object_type == "meetings":
        start = read_datetime(where + "hs_meeting_start_time", props.get("hs_meeting_start_time"))
        occurred = start or occurred
        raw = _upper(props.get("hs_meeting_outcome")).replace(" ", "_")
        outcome = MEETING_OUTCOMES.get(raw, model.Outcome.UNKNOWN)
    elif object_type == "tasks":
        if _upper(props.get("hs_task_status")) != "COMPLETED":
            return None
        done = read_datetime(where + "hs_task_completion_date", props.get("hs_task_completion_date"))
        occurred = done or occurred
        outcome = model.Outcome.COMPLETED
        created_by_followup = parse_task_key(props.get("hs_task_body")) is not None
    if occurred is None:
        return None
    return model.Activity(
        id=f"{object_type}:{payload['id']}",
        kind=kind,
        direction=direction,
        occurred_at=occurred,
        outcome=outcome,
        contact_ids=tuple(sorted(set(contact_ids))),
        created_by_followup=created_by_followup,
    )


def auto_task_from_hubspot(payload: Payload) -> model.AutoTask | None:
    """A task crm-followup created (its body carries our key line), or None; ``BadValue`` for a bad date."""
    props = _properties(payload)
    found = parse_task_key(props.get("hs_task_body"))
    if found is None:
        return None
    where = f"tasks:{payload['id']}."
    due = read_datetime(where + "hs_timestamp", props.get("hs_timestamp"))
    created = (
        read_datetime(where + "hs_createdate", props.get("hs_createdate"))
        or read_datetime(where + "createdAt", payload.get("createdAt"))
        or due
    )
    if due is None or created is None:
        return None
    return model.AutoTask(
        id=str(payload["id"]),
        key=found[0],
        rule_id=found[1],
        created_at=created,
        due_at=due,
        is_open=_upper(props.get("hs_task_status")) != "COMPLETED",
        owner_id=_plain(props.get("hubspot_owner_id")),
        task_type=TASK_TYPES_BACK.get(_upper(props.get("hs_task_type")), model.TaskType.TODO),
        subject=_plain(props.get("hs_task_subject")) or "",
        items=parse_items(props.get("hs_task_body")),
        modified_at=modified_stamp(payload),
    )


REP_TASK_TYPES: Mapping[str, model.TaskType] = {
    "CALL": model.TaskType.CALL,
    "EMAIL": model.TaskType.EMAIL,
    "TODO": model.TaskType.TODO,
}


def rep_task_from_hubspot(payload: Payload) -> model.RepTask | None:
    """An open follow-up task somebody set (``hs_task_type`` CALL, EMAIL or TODO, no key line), or None.

    Completed tasks, crm-followup's own and tasks of other types (LinkedIn and the like) are not. Its due
    date is informational (an unreadable one is left out, never a reason to reject the deal)."""
    props = _properties(payload)
    if _upper(props.get("hs_task_status")) == "COMPLETED":
        return None
    if parse_task_key(props.get("hs_task_body")) is not None:
        return None
    task_type = REP_TASK_TYPES.get(_upper(props.get("hs_task_type")) or "TODO")
    if task_type is None:
        return None
    return model.RepTask(
        id=str(payload["id"]),
        owner_id=_plain(props.get("hubspot_owner_id")),
        task_type=task_type,
        subject=_plain(props.get("hs_task_subject")) or "",
        due_at=parse_datetime(props.get("hs_timestamp")),
        modified_at=modified_stamp(payload),
    )


def deal_properties(
    field_names: Mapping[model.DealField, str], stage_ids: Iterable[str], extra: Iterable[str] = ()
) -> list[str]:
    """Every deal property a pull asks for: base, canonical fields, stage entry dates, policy extras."""
    names = [
        *DEAL_BASE_PROPERTIES,
        *field_names.values(),
        *(f"hs_date_entered_{s}" for s in stage_ids),
        *extra,
    ]
    return list(dict.fromkeys(names))


def _enum(value: object, enum: Any, default: Any) -> Any:
    """An enumeration option as its member; an option this version does not know is the default."""
    try:
        return enum(value.strip().lower()) if isinstance(value, str) and value else default
    except ValueError:
        return default


def _properties(payload: Payload) -> Mapping[str, Any]:
    props = payload.get("properties") or {}
    if not isinstance(props, Mapping):
        raise BadValue("properties", WRONG_TYPE, f"a {type(props).__name__} where an object belongs")
    return props


def _plain(value: object) -> str | None:
    """Text that only describes (a name, an e-mail, an owner id): a value of another type counts as none."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _upper(value: object) -> str:
    return value.upper() if isinstance(value, str) else ""


def deal_from_hubspot(
    payload: Payload,
    pipelines: Mapping[str, model.Pipeline],
    field_names: Mapping[model.DealField, str],
    *,
    extra_fields: Iterable[str] = (),
    field_types: Mapping[str, str] | None = None,
    contacts: Iterable[model.Contact] = (),
    activities: Iterable[model.Activity] = (),
    auto_tasks: Iterable[model.AutoTask] = (),
    rep_tasks: Iterable[model.RepTask] = (),
) -> model.Deal:
    """A deal aggregate, or ``SkipRecord`` naming the property and the reason: it sits in a pipeline or
    stage the directory does not know, has no create or modify date, or holds a value that is unreadable,
    of the wrong type or out of bounds (docs/crm-fields.md, "Bounds")."""
    deal_id = str(payload["id"])
    try:
        return _deal(
            deal_id,
            payload,
            pipelines,
            field_names,
            extra_fields=extra_fields,
            field_types=field_types or {},
            contacts=contacts,
            activities=activities,
            auto_tasks=auto_tasks,
            rep_tasks=rep_tasks,
        )
    except BadValue as bad:
        raise bad.skip("deal", deal_id) from None


def _deal(
    deal_id: str,
    payload: Payload,
    pipelines: Mapping[str, model.Pipeline],
    field_names: Mapping[model.DealField, str],
    *,
    extra_fields: Iterable[str],
    field_types: Mapping[str, str],
    contacts: Iterable[model.Contact],
    activities: Iterable[model.Activity],
    auto_tasks: Iterable[model.AutoTask],
    rep_tasks: Iterable[model.RepTask],
) -> model.Deal:
    props = _properties(payload)

    def text(name: str) -> str | None:
        return bounds.text(name, props.get(name))

    def field(f: model.DealField) -> str | None:
        return text(field_names[f])

    pipeline_id = text("pipeline") or "default"
    pipeline = pipelines.get(pipeline_id)
    stage = pipeline.stage(text("dealstage") or "") if pipeline else None
    if stage is None:
        raise BadValue("dealstage", "unknown_stage", "unknown pipeline or stage")
    created = read_datetime("createdate", props.get("createdate")) or read_datetime(
        "createdAt", payload.get("createdAt")
    )
    modified = read_datetime("hs_lastmodifieddate", props.get("hs_lastmodifieddate")) or read_datetime(
        "updatedAt", payload.get("updatedAt")
    )
    if created is None or modified is None:
        missing = "createdate" if created is None else "hs_lastmodifieddate"
        raise BadValue(missing, "missing_date", "no create or modify date")
    fields: dict[str, model.FieldValue] = {
        name: typed_value(name, props.get(name), field_types.get(name)) for name in extra_fields
    }
    for reason_field in (model.DealField.FOLLOWUP_REASON, model.DealField.CLOSE_REASON):
        fields.setdefault(field_names[reason_field], field(reason_field))
    interval_name = field_names[model.DealField.AGREED_INTERVAL_DAYS]
    interval = bounds.interval_days(interval_name, read_number(interval_name, props.get(interval_name)))
    date_name = field_names[model.DealField.NEXT_STEP_DATE]
    score_name = field_names[model.DealField.QUALIFICATION_SCORE]
    since_name = field_names[model.DealField.FOLLOWUP_STATE_SINCE]
    entered_name = f"hs_date_entered_{stage.id}"
    return model.Deal(
        id=deal_id,
        name=text("dealname") or "",
        pipeline_id=pipeline_id,
        stage=stage,
        created_at=created,
        modified_at=modified,
        owner_id=text("hubspot_owner_id"),
        stage_entered_at=read_datetime(entered_name, props.get(entered_name)),
        amount=read_number("amount", props.get("amount")),
        currency=text("deal_currency_code"),
        close_date=read_date("closedate", props.get("closedate")),
        next_step=model.NextStep(
            what=field(model.DealField.NEXT_STEP),
            why=field(model.DealField.NEXT_STEP_WHY),
            when=read_date(date_name, props.get(date_name)),
        ),
        agreement=model.Agreement(
            interval_days=interval,
            channel=_enum(field(model.DealField.AGREED_CHANNEL), model.Channel, None),
        ),
        qualification_score=read_number(score_name, props.get(score_name)),
        readiness=_enum(field(model.DealField.READINESS), model.Readiness, model.Readiness.UNKNOWN),
        followup_state=_enum(
            field(model.DealField.FOLLOWUP_STATE), model.FollowupState, model.FollowupState.ACTIVE
        ),
        followup_state_since=read_datetime(since_name, props.get(since_name)),
        fields=fields,
        contacts=tuple(sorted(contacts, key=lambda c: (not c.is_primary, _id_order(c.id)))),
        activities=tuple(sorted(activities, key=lambda a: (a.occurred_at, a.id))),
        auto_tasks=tuple(sorted(auto_tasks, key=lambda t: (t.created_at, t.id))),
        rep_tasks=tuple(sorted(rep_tasks, key=lambda t: _id_order(t.id))),
    )


def _id_order(record_id: str) -> tuple[int, str]:
    return (int(record_id), "") if record_id.isdigit() else (0, record_id)
