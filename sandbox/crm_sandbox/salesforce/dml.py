"""Create, update and delete with Salesforce's checks and the fields it derives.

Checks, in Salesforce's order and wording: unknown fields (INVALID_FIELD), read-only fields
(INVALID_FIELD_FOR_INSERT_UPDATE), values of the wrong JSON type (JSON_PARSER_ERROR), restricted picklists
(INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST), lengths (STRING_TOO_LONG), lookups (MALFORMED_ID,
INVALID_CROSS_REFERENCE_KEY), required fields (REQUIRED_FIELD_MISSING) and campaign membership
(DUPLICATE_VALUE "Already a campaign member.").

Derived fields: Task IsClosed (from the status), IsHighPriority, AccountId, CompletedDateTime; Event
duration/end and activity date; Opportunity IsClosed/IsWon/Probability/ForecastCategoryName and
LastStageChangeDate from OpportunityStage; Contact/Lead Name; CampaignMember HasResponded and default
status; a new Campaign gets the statuses "Sent" (default) and "Responded". A closed Task or a past Event
recalculates its Opportunity's LastActivityDate; when that date changes, the opportunity's SystemModstamp
moves and its LastModifiedDate does not ("The LastActivityDate field is modified" is one of the automated
changes Salesforce lists, help article 000387261). HasOpenActivity and HasOverdueTask are recalculated
without moving either stamp (unverified: Salesforce's list does not name them; see sandbox/README.md).
"""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

from crm_sandbox.salesforce.errors import ApiError, dml_error, entity_deleted, not_found
from crm_sandbox.salesforce.ids import normalize_id
from crm_sandbox.salesforce.schema import CLOSED_TASK_STATUSES, ObjectDef
from crm_sandbox.salesforce.store import Record, SalesforceStore, Table
from crm_sandbox.salesforce.values import from_json

_NAME_OBJECTS = frozenset({"Contact", "Lead", "User"})


def convert(store: SalesforceStore, obj: ObjectDef, body: dict[str, Any], *, creating: bool) -> Record:
    """Typed values for the fields in ``body``, or the first error Salesforce would report."""
    values: Record = {}
    readonly: list[str] = []
    for key, raw in body.items():
        if key == "attributes":
            continue
        fd = obj.field(key)
        if fd is None:
            raise dml_error("INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}")
        if fd.name == "Id":
            if creating:
                raise dml_error("INVALID_FIELD", "Record ID: cannot specify Id in an insert call", ["Id"])
            continue
        if not (fd.createable if creating else fd.updateable):
            readonly.append(fd.name)
            continue
        try:
            value = from_json(fd, raw)
        except ValueError as exc:
            raise ApiError(400, "JSON_PARSER_ERROR", str(exc)) from None
        if value is not None and fd.restricted and value not in fd.picklist:
            raise dml_error(
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"{fd.label}: bad value for restricted picklist field: {value}",
                [fd.name],
            )
        if isinstance(value, str) and fd.length and len(value) > fd.length and fd.type != "reference":
            raise dml_error(
                "STRING_TOO_LONG",
                f"{fd.label}: data value too large: {value[:40]}... (max length={fd.length})",
                [fd.name],
            )
        if value is not None and fd.type == "reference":
            value = _check_reference(store, fd.name, fd.label, fd.reference_to, value)
        if value is None and not fd.nillable and fd.type == "boolean":
            value = False
        values[fd.name] = value
    if readonly:
        verb = "create" if creating else "update"
        raise dml_error(
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            f"Unable to {verb} fields: {', '.join(readonly)}. Please check the security settings of this "
            "field and verify that it is read/write for your profile or permission set.",
            readonly,
        )
    return values


def _check_reference(
    store: SalesforceStore, name: str, label: str, targets: tuple[str, ...], value: str
) -> str:
    normal = normalize_id(value)
    if normal is None:
        raise dml_error("MALFORMED_ID", f"{label}: id value of incorrect type: {value}", [name])
    found = store.find(normal)
    if found is None or found[1].get("IsDeleted"):
        raise dml_error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [name])
    if found[0].obj.name not in targets:
        raise dml_error("FIELD_INTEGRITY_EXCEPTION", f"{label}: id value of incorrect type: {value}", [name])
    return normal


def create(store: SalesforceStore, obj: ObjectDef, body: dict[str, Any], actor: str) -> Record:
    """Insert a record from a REST body; raises ``ApiError``. Callers hold ``store.lock``."""
    if not obj.createable:
        raise dml_error("INVALID_TYPE_FOR_OPERATION", f"entity type {obj.name} does not support insert")
    values = convert(store, obj, body, creating=True)
    for fd in obj.fields.values():
        if fd.name not in values and fd.default_value is not None:
            values[fd.name] = fd.default_value
        if fd.type == "boolean" and fd.createable and values.get(fd.name) is None:
            values[fd.name] = False
    if obj.field("OwnerId") is not None and values.get("OwnerId") is None:
        values["OwnerId"] = actor
    _derive(store, obj, values, None)
    missing = [
        fd.name for fd in obj.fields.values() if fd.required and fd.createable and values.get(fd.name) is None
    ]
    missing += _extra_required(obj, values)
    if missing:
        raise dml_error(
            "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing
        )
    table = store.table(obj.name)
    if obj.name == "CampaignMember":
        _check_new_member(store, values)
    if obj.name == "PermissionSetAssignment":
        _check_new_assignment(store, values)
    record = store.insert(table, values, actor)
    _after_write(store, obj, None, record, actor)
    return record


def update(
    store: SalesforceStore, obj: ObjectDef, record_id: str, body: dict[str, Any], actor: str
) -> Record:
    """Apply a PATCH body to an existing record; raises ``ApiError``. Callers hold ``store.lock``."""
    if not obj.updateable:
        raise dml_error("INVALID_TYPE_FOR_OPERATION", f"entity type {obj.name} does not support update")
    table, old = live_record(store, obj, record_id)
    changes = convert(store, obj, body, creating=False)
    merged = {**old, **changes}
    _derive(store, obj, merged, old)
    for fd in obj.fields.values():
        if fd.required and fd.name in changes and changes[fd.name] is None:
            raise dml_error("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{fd.name}]", [fd.name])
    diff = {k: v for k, v in merged.items() if old.get(k) != v}
    diff.update({k: None for k in old if k not in merged})
    record = store.replace(table, old, diff, actor)
    _after_write(store, obj, old, record, actor)
    return record


def delete(store: SalesforceStore, obj: ObjectDef, record_id: str, actor: str) -> None:
    """Move a record to the recycle bin, with the children Salesforce cascades. Callers hold the lock."""
    if not obj.deletable:
        raise dml_error("INVALID_TYPE_FOR_OPERATION", f"entity type {obj.name} does not support delete")
    table, old = live_record(store, obj, record_id)
    store.soft_delete(table, old, actor)
    cascades = {
        "Opportunity": [("OpportunityContactRole", "OpportunityId")],
        "Campaign": [("CampaignMember", "CampaignId"), ("CampaignMemberStatus", "CampaignId")],
    }
    for child, fk in cascades.get(obj.name, []):
        child_table = store.table(child)
        for rid in sorted(child_table.ids_where(fk, record_id)):
            rec = child_table.rows[rid]
            if not rec.get("IsDeleted"):
                store.soft_delete(child_table, rec, actor)
    _after_write(store, obj, old, None, actor)


def live_record(store: SalesforceStore, obj: ObjectDef, record_id: str) -> tuple[Table, Record]:
    """The non-deleted record ``record_id`` of type ``obj``: 404 NOT_FOUND or ENTITY_IS_DELETED otherwise."""
    normal = normalize_id(record_id)
    table = store.table(obj.name)
    if normal is None or not normal.startswith(obj.key_prefix):
        raise not_found(f"Provided external ID field does not exist or is not accessible: {record_id}")
    rec = table.rows.get(normal)
    if rec is None:
        raise not_found()
    if rec.get("IsDeleted"):
        raise entity_deleted()
    return table, rec


def _extra_required(obj: ObjectDef, v: Record) -> list[str]:
    if obj.name == "CampaignMember" and v.get("ContactId") is None and v.get("LeadId") is None:
        return ["ContactId", "LeadId"]
    if obj.name == "Event":
        missing = []
        if v.get("StartDateTime") is None and not v.get("IsAllDayEvent"):
            missing.append("StartDateTime")
        if v.get("EndDateTime") is None and v.get("DurationInMinutes") is None and not v.get("IsAllDayEvent"):
            missing.append("DurationInMinutes")
        return missing
    return []


def _derive(store: SalesforceStore, obj: ObjectDef, v: Record, old: Record | None) -> None:
    name = obj.name
    if name in _NAME_OBJECTS:
        v["Name"] = " ".join(p for p in (v.get("FirstName"), v.get("LastName")) if p) or None
    elif name == "Task":
        closed = v.get("Status") in CLOSED_TASK_STATUSES
        v["IsClosed"] = closed
        v["IsHighPriority"] = v.get("Priority") == "High"
        v.setdefault("TaskSubtype", "Task")
        if closed and (old is None or not old.get("IsClosed")):
            v["CompletedDateTime"] = store.stamp()
        elif not closed:
            v["CompletedDateTime"] = None
        v["AccountId"] = _account_of(store, v)
    elif name == "Event":
        start = v.get("StartDateTime") or v.get("ActivityDateTime")
        if start is not None:
            v["StartDateTime"] = v["ActivityDateTime"] = start
            v["ActivityDate"] = start.astimezone(UTC).date()
            if v.get("EndDateTime") is not None and (
                old is None or v.get("EndDateTime") != old.get("EndDateTime")
            ):
                v["DurationInMinutes"] = int((v["EndDateTime"] - start).total_seconds() // 60)
            elif v.get("DurationInMinutes") is not None:
                v["EndDateTime"] = start + timedelta(minutes=int(v["DurationInMinutes"]))
        v.setdefault("EventSubtype", "Event")
        v["AccountId"] = _account_of(store, v)
    elif name == "Opportunity":
        if old is None or v.get("StageName") != old.get("StageName"):
            stage = _stage(store, v.get("StageName"))
            v["IsClosed"] = bool(stage and stage.get("IsClosed"))
            v["IsWon"] = bool(stage and stage.get("IsWon"))
            if stage is not None:
                if old is None or v.get("Probability") == old.get("Probability"):
                    v["Probability"] = stage.get("DefaultProbability")
                if old is None or v.get("ForecastCategoryName") == old.get("ForecastCategoryName"):
                    v["ForecastCategoryName"] = stage.get("ForecastCategoryName")
            v["LastStageChangeDate"] = store.stamp()
        v.setdefault("HasOpenActivity", False)
        v.setdefault("HasOverdueTask", False)
    elif name == "CampaignMember":
        v["LeadOrContactId"] = v.get("ContactId") or v.get("LeadId")
        statuses = _member_statuses(store, v.get("CampaignId"))
        if v.get("Status") is None:
            default = next((s for s in statuses if s.get("IsDefault")), None)
            v["Status"] = default["Label"] if default else "Sent"
        row = next((s for s in statuses if s.get("Label") == v["Status"]), None)
        responded = bool(row and row.get("HasResponded"))
        v["HasResponded"] = responded
        if responded and v.get("FirstRespondedDate") is None:
            v["FirstRespondedDate"] = store.now().astimezone(UTC).date()


def _stage(store: SalesforceStore, label: Any) -> Record | None:
    if not isinstance(label, str):
        return None
    for rec in store.table("OpportunityStage").rows.values():
        if str(rec.get("MasterLabel", "")).casefold() == label.casefold():
            return rec
    return None


def _member_statuses(store: SalesforceStore, campaign_id: Any) -> list[Record]:
    table = store.table("CampaignMemberStatus")
    return [table.rows[r] for r in sorted(table.ids_where("CampaignId", campaign_id))]


def _account_of(store: SalesforceStore, v: Record) -> str | None:
    for key in ("WhatId", "WhoId"):
        ref = v.get(key)
        found = store.find(ref) if ref else None
        if found is None:
            continue
        table, rec = found
        if table.obj.name == "Account":
            return str(rec["Id"])
        if rec.get("AccountId"):
            return str(rec["AccountId"])
    return None


def _check_new_member(store: SalesforceStore, v: Record) -> None:
    table = store.table("CampaignMember")
    who = v.get("ContactId") or v.get("LeadId")
    for rid in table.ids_where("CampaignId", v["CampaignId"]):
        rec = table.rows[rid]
        if not rec.get("IsDeleted") and (rec.get("ContactId") or rec.get("LeadId")) == who:
            raise dml_error("DUPLICATE_VALUE", "Already a campaign member.")


def _check_new_assignment(store: SalesforceStore, v: Record) -> None:
    table = store.table("PermissionSetAssignment")
    for rid in table.ids_where("AssigneeId", v["AssigneeId"]):
        rec = table.rows[rid]
        if not rec.get("IsDeleted") and rec.get("PermissionSetId") == v["PermissionSetId"]:
            raise dml_error(
                "DUPLICATE_VALUE",
                f"duplicate value found: <unknown> duplicates value on record with id: {rid}",
            )


def _after_write(
    store: SalesforceStore, obj: ObjectDef, old: Record | None, new: Record | None, actor: str
) -> None:
    if obj.name == "Campaign" and old is None and new is not None:
        statuses = store.table("CampaignMemberStatus")
        for order, (label, default, responded) in enumerate(
            (("Sent", True, False), ("Responded", False, True)), 1
        ):
            store.insert(
                statuses,
                {
                    "CampaignId": new["Id"],
                    "Label": label,
                    "IsDefault": default,
                    "HasResponded": responded,
                    "SortOrder": order,
                },
                actor,
            )
    if obj.name in ("Task", "Event"):
        opp_ids = {r.get("WhatId") for r in (old, new) if r is not None}
        for opp_id in opp_ids:
            if isinstance(opp_id, str) and opp_id.startswith("006"):
                _refresh_activity_facts(store, opp_id)


def _refresh_activity_facts(store: SalesforceStore, opp_id: str) -> None:
    opps = store.table("Opportunity")
    opp = opps.rows.get(opp_id)
    if opp is None:
        return
    today = store.now().astimezone(UTC).date()
    last = None
    has_open = has_overdue = False
    for name in ("Task", "Event"):
        table = store.table(name)
        for rid in table.ids_where("WhatId", opp_id):
            rec = table.rows[rid]
            if rec.get("IsDeleted"):
                continue
            day = rec.get("ActivityDate")
            closed = name == "Event" or rec.get("IsClosed")
            if name == "Event" and day is not None and day > today:
                continue
            if closed:
                if day is not None and (last is None or day > last):
                    last = day
            else:
                has_open = True
                has_overdue = has_overdue or (day is not None and day < today)
    facts = {"LastActivityDate": last, "HasOpenActivity": has_open, "HasOverdueTask": has_overdue}
    if any(opp.get(k) != v for k, v in facts.items()):
        # a system change: SystemModstamp only, and only when LastActivityDate itself changed
        store.replace(opps, opp, facts, None, stamp=opp.get("LastActivityDate") != last)
