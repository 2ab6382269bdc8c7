"""Pure mapping from Salesforce records (query JSON) to the domain model in ``policies.model``.

Records are the dicts simple-salesforce returns: fields by API name, parent lookups as nested dicts, child
relationship sets as ``{"totalSize", "done", "records"}`` or ``None``. Nothing here does I/O or reads the
clock (``now`` is an argument), so every rule is tested on record dicts alone. Activities are reduced in
``activities.py``; a Task that merely mirrors an EmailMessage (``EmailMessage.ActivityId``, Enhanced
Email) stands for that e-mail (with the Task's contact), so the e-mail is counted once.

An opportunity is mapped whole or rejected whole: ``deal_from_records`` raises ``SkipRecord`` naming the
field and the reason when a value (of the opportunity or of one of its activities) is unreadable, of the
wrong type or out of bounds (``connectors.values``; docs/crm-fields.md, "Bounds").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from connectors import values as bounds
from connectors.base import TaskView
from connectors.salesforce.activities import (
    activity_from_email,
    activity_from_event,
    auto_task_from_task,
    rep_task_from_task,
    touch_of_row,
)
from connectors.salesforce.values import (
    Record,
    children,
    parse_number,
    read_date,
    read_datetime,
    token,
)
from connectors.values import BadValue, read_number
from policies import model


@dataclass(frozen=True, slots=True)
class MappingConfig:
    """What the mapping needs to know from the options (pure data)."""

    pipeline_id: str
    opportunity_fields: Mapping[model.DealField, str]
    contact_roles: Mapping[str, model.ContactRole]
    stage_ids: Mapping[str, str] = field(default_factory=dict)  # StageName -> policy stage id
    task_key_field: str = "Followup_Key__c"
    task_rule_field: str = "Followup_Rule__c"
    extra_deal_fields: tuple[str, ...] = ()
    default_time_zone: str = "UTC"
    owners: Mapping[str, model.Owner] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------
# Directory
# ------------------------------------------------------------------------------------------------


def owner_from_user(user: Record) -> model.Owner:
    return model.Owner(
        id=str(user["Id"]),
        name=str(user.get("Name") or ""),
        email=user.get("Email"),
        time_zone=user.get("TimeZoneSidKey"),
        active=bool(user.get("IsActive", True)),
    )


def task_view(row: Record) -> TaskView:
    """A Task of ours as a rep reads it: Salesforce Task due dates are dates."""
    due = row.get("ActivityDate")
    return TaskView(
        str(row.get("Subject") or ""),
        date.fromisoformat(due) if isinstance(due, str) and due else None,
        row.get("OwnerId"),
        str(row.get("Description") or ""),
    )


def pipeline_from_stages(
    rows: Iterable[Record], *, pipeline_id: str, label: str, stage_ids: Mapping[str, str] | None = None
) -> model.Pipeline:
    """One pipeline from ``OpportunityStage`` rows; ``Stage.id`` is the StageName (``ApiName``), or the
    policy stage id ``stage_ids`` maps it to."""
    stage_ids = stage_ids or {}
    stages = []
    for index, row in enumerate(rows):
        if row.get("IsActive") is False:
            continue
        probability = parse_number(row.get("DefaultProbability"))
        name = str(row.get("ApiName") or row["MasterLabel"])
        stages.append(
            model.Stage(
                id=stage_ids.get(name, name),
                label=str(row.get("MasterLabel") or row.get("ApiName")),
                pipeline_id=pipeline_id,
                display_order=int(row.get("SortOrder") or index),
                is_closed=bool(row.get("IsClosed")),
                is_won=bool(row.get("IsWon")),
                probability=probability / 100 if probability is not None else None,
            )
        )
    return model.Pipeline(id=pipeline_id, label=label, stages=tuple(stages))


# ------------------------------------------------------------------------------------------------
# The deal aggregate
# ------------------------------------------------------------------------------------------------


def contacts_from_roles(
    rows: Iterable[Record], roles: Mapping[str, model.ContactRole]
) -> tuple[model.Contact, ...]:
    """One ``Contact`` per ContactId, with every role it plays on the opportunity."""
    merged: dict[str, model.Contact] = {}
    for row in rows:
        contact_id = row.get("ContactId")
        if not contact_id:
            continue
        role_name = row.get("Role")
        role = roles.get(str(role_name), model.ContactRole.OTHER) if role_name else None
        detail = row.get("Contact")
        if not isinstance(detail, Mapping):
            detail = {}
        previous = merged.get(str(contact_id))
        email = detail.get("Email")
        merged[str(contact_id)] = model.Contact(
            id=str(contact_id),
            name=str(detail.get("Name") or (previous.name if previous else "")),
            email=(email if isinstance(email, str) else None) or (previous.email if previous else None),
            roles=(previous.roles if previous else frozenset()) | ({role} if role else set()),
            is_primary=bool(row.get("IsPrimary")) or bool(previous and previous.is_primary),
        )
    return tuple(merged.values())


def _enum(value: Any, enum: type[Any], default: Any) -> Any:
    name = token(value)
    try:
        return enum(name) if name else default
    except ValueError:
        return default


def _field_value(name: str, value: Any) -> model.FieldValue:
    """An extra field a policy reads: a JSON scalar as it came (numbers finite and bounded)."""
    return bounds.scalar(name, value)


def stage_of(
    record: Record,
    pipeline: model.Pipeline | None,
    pipeline_id: str,
    stage_ids: Mapping[str, str] | None = None,
) -> model.Stage:
    """The directory stage named by ``StageName``, else one built from the record's IsClosed/IsWon."""
    name = str(record.get("StageName") or "")
    stage_id = (stage_ids or {}).get(name, name)
    stage = pipeline.stage(stage_id) if pipeline else None
    if stage is not None:
        return stage
    return model.Stage(
        id=stage_id,
        label=name,
        pipeline_id=pipeline_id,
        is_closed=bool(record.get("IsClosed")),
        is_won=bool(record.get("IsWon")),
    )


def deal_from_records(
    opportunity: Record,
    emails: Sequence[Record],
    *,
    config: MappingConfig,
    pipeline: model.Pipeline | None,
    now: datetime,
    contact_touches: Sequence[model.Activity] = (),
) -> model.Deal:
    """The whole ``Deal`` aggregate of one opportunity row (with its child sets) and its e-mails.

    ``contact_touches`` are touches logged on the deal's contacts but related to other records; they join
    the deal's own touches (once each). ``SkipRecord`` (object ``Opportunity``) when the record cannot be
    used: no CreatedDate/LastModifiedDate, or a value unreadable, of the wrong type or out of bounds.
    """
    record_id = str(opportunity.get("Id"))
    try:
        return _deal(
            opportunity, emails, config=config, pipeline=pipeline, now=now, contact_touches=contact_touches
        )
    except BadValue as bad:
        raise bad.skip("Opportunity", record_id) from None


def _deal(
    opportunity: Record,
    emails: Sequence[Record],
    *,
    config: MappingConfig,
    pipeline: model.Pipeline | None,
    now: datetime,
    contact_touches: Sequence[model.Activity],
) -> model.Deal:
    f = config.opportunity_fields
    record_id = str(opportunity["Id"])

    def text(name: str) -> str | None:
        return bounds.text(name, opportunity.get(name))

    created = read_datetime("CreatedDate", opportunity.get("CreatedDate"))
    modified = read_datetime("LastModifiedDate", opportunity.get("LastModifiedDate")) or read_datetime(
        "SystemModstamp", opportunity.get("SystemModstamp")
    )
    if created is None or modified is None:
        missing = "CreatedDate" if created is None else "LastModifiedDate"
        raise BadValue(missing, "missing_date", "CreatedDate or LastModifiedDate missing")
    mirrors = {str(e["ActivityId"]): e for e in emails if e.get("ActivityId")}
    touches: dict[str, model.Activity] = {}
    auto_tasks: list[model.AutoTask] = []
    rep_tasks: list[model.RepTask] = []
    for task in children(opportunity, "Tasks"):
        owner = config.owners.get(str(task.get("OwnerId")))
        auto = auto_task_from_task(
            task,
            key_field=config.task_key_field,
            rule_field=config.task_rule_field,
            owner_time_zone=owner.time_zone if owner else None,
            default_zone=config.default_time_zone,
        )
        if auto is not None:
            auto_tasks.append(auto)
        rep = rep_task_from_task(
            task,
            key_field=config.task_key_field,
            owner_time_zone=owner.time_zone if owner else None,
            default_zone=config.default_time_zone,
        )
        if rep is not None:
            rep_tasks.append(rep)
        touch = touch_of_row(task, key_field=config.task_key_field, now=now, mirrors=mirrors)
        if touch is not None:
            touches[touch.id] = touch
    for event in children(opportunity, "Events"):
        meeting = activity_from_event(event, now=now)
        if meeting is not None:
            touches[meeting.id] = meeting
    for email in emails:
        mail = activity_from_email(email)
        if mail is not None and mail.id not in touches:
            touches[mail.id] = mail
    for touch in contact_touches:
        touches.setdefault(touch.id, touch)
    activities = list(touches.values())
    activities.sort(key=lambda a: (a.occurred_at, a.id))
    auto_tasks.sort(key=lambda t: (t.created_at, t.id))
    interval_name = f[model.DealField.AGREED_INTERVAL_DAYS]
    interval = bounds.interval_days(interval_name, read_number(interval_name, opportunity.get(interval_name)))
    channel = _enum(text(f[model.DealField.AGREED_CHANNEL]), model.Channel, None)
    owner_id = text("OwnerId")
    score_name = f[model.DealField.QUALIFICATION_SCORE]
    date_name = f[model.DealField.NEXT_STEP_DATE]
    since_name = f[model.DealField.FOLLOWUP_STATE_SINCE]
    return model.Deal(
        id=record_id,
        name=text("Name") or "",
        pipeline_id=config.pipeline_id,
        stage=stage_of(opportunity, pipeline, config.pipeline_id, config.stage_ids),
        created_at=created,
        modified_at=modified,
        owner_id=owner_id,
        stage_entered_at=read_datetime("LastStageChangeDate", opportunity.get("LastStageChangeDate")),
        amount=read_number("Amount", opportunity.get("Amount")),
        close_date=read_date("CloseDate", opportunity.get("CloseDate")),
        next_step=model.NextStep(
            what=text(f[model.DealField.NEXT_STEP]),
            why=text(f[model.DealField.NEXT_STEP_WHY]),
            when=read_date(date_name, opportunity.get(date_name)),
        ),
        agreement=model.Agreement(interval_days=interval, channel=channel),
        qualification_score=read_number(score_name, opportunity.get(score_name)),
        readiness=_enum(text(f[model.DealField.READINESS]), model.Readiness, model.Readiness.UNKNOWN),
        followup_state=_enum(
            text(f[model.DealField.FOLLOWUP_STATE]), model.FollowupState, model.FollowupState.ACTIVE
        ),
        followup_state_since=read_datetime(since_name, opportunity.get(since_name)),
        fields={name: _field_value(name, opportunity.get(name)) for name in config.extra_deal_fields},
        contacts=contacts_from_roles(children(opportunity, "OpportunityContactRoles"), config.contact_roles),
        activities=tuple(activities),
        auto_tasks=tuple(auto_tasks),
        rep_tasks=tuple(sorted(rep_tasks, key=lambda t: t.id)),
    )


def add_contact_touches(
    deal: model.Deal, index: Mapping[str, Sequence[tuple[str | None, model.Activity | BadValue]]]
) -> model.Deal:
    """``deal`` with the touches logged on its contacts for other records (from ``index`` by contact id);
    ``SkipRecord`` when one of them could not be read (``activities.contact_touches``)."""
    known = {a.id for a in deal.activities}
    extra: dict[str, model.Activity] = {}
    for contact in deal.contacts:
        for related_to, touch in index.get(contact.id, ()):
            if related_to == deal.id:
                continue
            if isinstance(touch, BadValue):
                raise touch.skip("Opportunity", deal.id, f"a touch on contact {contact.id}: ")
            if touch.id not in known:
                extra.setdefault(touch.id, touch)
    if not extra:
        return deal
    activities = sorted((*deal.activities, *extra.values()), key=lambda a: (a.occurred_at, a.id))
    return replace(deal, activities=tuple(activities))
