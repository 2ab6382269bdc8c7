"""Opportunity history as Salesforce keeps it: ``OpportunityHistory``, ``OpportunityFieldHistory`` and the
``FieldDefinition`` rows that say which fields have history tracking on.

* **OpportunityHistory** (stage history): Salesforce writes a row when an opportunity is created and
  whenever its Amount, Probability, StageName, CloseDate or ForecastCategory changes, holding those fields'
  values after the change plus ``PrevAmount``/``PrevCloseDate`` (reference docs, object reference
  "OpportunityHistory"). Independent of field history tracking.
* **OpportunityFieldHistory**: one row per change of a field whose history tracking is on (``Field``: the
  field's API name; ``OldValue``/``NewValue``; ``DataType``), none for the value a record is created with.
  A change of ``OwnerId`` writes two rows with ``Field`` ``Owner``: one with the users' ids (DataType
  ``EntityId``), one with their names (``Text``) [unverified: the field name Salesforce reports for owner
  changes]. Text values are cut to 255 characters (NewValue's length).
* **Tracking**: at most 20 fields per object (60 with Field Audit Trail, which the sandbox does not have);
  ``FieldDefinition.IsFieldHistoryTracked`` says which, queried with ``WHERE EntityDefinition.QualifiedApiName
  = 'Opportunity'``. A seeded org tracks ``catalog.HISTORY_TRACKED_BY_DEFAULT``; tests change it with
  ``set_history_tracking``; a field created through the Metadata API with ``trackHistory`` true is tracked.

A seeded org's rows come from the dataset: deals generated with histories (``Dataset.history``) get one
OpportunityHistory row per moment their stage, amount or close date changed and one OpportunityFieldHistory
row per change of a tracked field; other deals get their creation row only. Deleting an opportunity deletes
its history rows (``IsDeleted``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from crm_sandbox.dataset import GenFieldChange
from crm_sandbox.salesforce.catalog import HISTORY_TRACKED_BY_DEFAULT
from crm_sandbox.salesforce.ids import make_id
from crm_sandbox.salesforce.store import Record, SalesforceStore, to_ms

__all__ = [
    "MAX_TRACKED_FIELDS",
    "default_tracking",
    "load_history_rows",
    "opportunity_written",
    "refresh_field_definitions",
    "seed_opportunity_history",
    "set_history_tracking",
    "track_field",
    "tracked_fields",
]

MAX_TRACKED_FIELDS = 20
STAGE_HISTORY_FIELDS = ("StageName", "Amount", "CloseDate", "Probability", "ForecastCategoryName")
_UNTRACKABLE = frozenset(
    {
        "id",
        "isdeleted",
        "createddate",
        "createdbyid",
        "lastmodifieddate",
        "lastmodifiedbyid",
        "systemmodstamp",
    }
)
_DATA_TYPES = {
    "string": "Text",
    "textarea": "TextArea",
    "combobox": "Text",
    "email": "Email",
    "phone": "Phone",
    "url": "Url",
    "picklist": "DynamicEnum",
    "date": "Date",
    "datetime": "DateTime",
    "double": "Double",
    "int": "Double",
    "currency": "Currency",
    "percent": "Percent",
    "boolean": "Boolean",
    "reference": "EntityId",
}
# ForecastCategoryName (the label picklist) -> OpportunityHistory.ForecastCategory (the API enum)
_FORECAST = {"Best Case": "BestCase", "Commit": "Forecast"}


def tracked_fields(store: SalesforceStore, object_name: str) -> frozenset[str]:
    return store.history_tracked.get(object_name.lower(), frozenset())


def set_history_tracking(store: SalesforceStore, object_name: str, fields: Iterable[str]) -> None:
    """Turn history tracking on for exactly ``fields`` of ``object_name`` (ValueError as Setup refuses)."""
    obj = store.schema.get(object_name)
    if obj is None:
        raise ValueError(f"no object {object_name}")
    names: list[str] = []
    for name in dict.fromkeys(fields):
        fd = obj.field(name)
        if fd is None:
            raise ValueError(f"{object_name} has no field {name}")
        if fd.name.lower() in _UNTRACKABLE or fd.type == "id":
            raise ValueError(f"history tracking is not available for {object_name}.{fd.name}")
        names.append(fd.name)
    if len(names) > MAX_TRACKED_FIELDS:
        raise ValueError(
            f"{object_name}: at most {MAX_TRACKED_FIELDS} fields can be tracked, not {len(names)}"
        )
    with store.lock:
        store.history_tracked[obj.name.lower()] = frozenset(names)
        refresh_field_definitions(store)


def track_field(store: SalesforceStore, object_name: str, field_name: str) -> None:
    """Add one field to the tracked set (the Metadata API's ``trackHistory``)."""
    set_history_tracking(store, object_name, [*sorted(tracked_fields(store, object_name)), field_name])


def refresh_field_definitions(store: SalesforceStore) -> None:
    """Rebuild the EntityDefinition and FieldDefinition rows from the schema and the tracking settings."""
    entities: list[Record] = []
    definitions: list[Record] = []
    for number, obj in enumerate(sorted(store.schema.objects.values(), key=lambda o: o.name), 1):
        entity_id = make_id("0ED", number)
        tracked = {f.lower() for f in tracked_fields(store, obj.name)}
        entities.append(
            {
                "Id": entity_id,
                "DurableId": obj.name,
                "QualifiedApiName": obj.name,
                "Label": obj.label,
                "IsFieldHistoryTracked": bool(tracked),
            }
        )
        for fd in sorted(obj.fields.values(), key=lambda f: f.name):
            definitions.append(
                {
                    "Id": make_id("0FD", len(definitions) + 1),
                    "DurableId": f"{obj.name}.{fd.name}",
                    "QualifiedApiName": fd.name,
                    "Label": fd.label,
                    "DataType": _DATA_TYPES.get(fd.type, fd.type),
                    "EntityDefinitionId": entity_id,
                    "IsFieldHistoryTracked": fd.name.lower() in tracked,
                    "IsCalculated": False,
                }
            )
    for name, rows in (("EntityDefinition", entities), ("FieldDefinition", definitions)):
        table = store.table(name)
        table.rows = {}
        table.bulk_load(rows)


# ------------------------------------------------------------------------------------------------ writes


def _forecast(record: Mapping[str, Any]) -> str | None:
    name = record.get("ForecastCategoryName")
    return _FORECAST.get(name, name) if isinstance(name, str) else None


def _stage_row(record: Mapping[str, Any], previous: Mapping[str, Any] | None) -> Record:
    amount, probability = record.get("Amount"), record.get("Probability")
    expected = amount * probability / 100 if amount is not None and probability is not None else None
    return {
        "OpportunityId": record["Id"],
        "StageName": record.get("StageName"),
        "Amount": amount,
        "ExpectedRevenue": expected,
        "CloseDate": record.get("CloseDate"),
        "Probability": probability,
        "ForecastCategory": _forecast(record),
        "PrevAmount": previous.get("Amount") if previous is not None else None,
        "PrevCloseDate": previous.get("CloseDate") if previous is not None else None,
    }


def _history_insert(
    store: SalesforceStore, object_name: str, values: Record, at: datetime, actor: str
) -> None:
    table = store.table(object_name)
    row: Record = {k: v for k, v in values.items() if v is not None}
    row.update(Id=store.new_id(table), IsDeleted=False, CreatedDate=to_ms(at), CreatedById=actor)
    if object_name == "OpportunityHistory":
        row["SystemModstamp"] = row["CreatedDate"]
    store.put_row(table, row)


def _stored(value: Any, length: int = 255) -> Any:
    return value[:length] if isinstance(value, str) else value


def _field_rows(store: SalesforceStore, name: str, old: Any, new: Any) -> list[Record]:
    """The OpportunityFieldHistory rows (without ids and dates) of one tracked field's change."""
    obj = store.schema.get("Opportunity")
    fd = obj.field(name) if obj is not None else None
    data_type = _DATA_TYPES.get(fd.type, "Text") if fd is not None else "Text"
    if name == "OwnerId":
        users = store.table("User").rows
        names = [users.get(v, {}).get("Name") if isinstance(v, str) else None for v in (old, new)]
        return [
            {"Field": "Owner", "DataType": "EntityId", "OldValue": old, "NewValue": new},
            {"Field": "Owner", "DataType": "Text", "OldValue": names[0], "NewValue": names[1]},
        ]
    return [{"Field": name, "DataType": data_type, "OldValue": _stored(old), "NewValue": _stored(new)}]


def opportunity_written(store: SalesforceStore, old: Record | None, new: Record | None, actor: str) -> None:
    """The history rows of one Opportunity write (created, updated, or deleted when ``new`` is None)."""
    if new is None:
        if old is not None:
            _delete_history(store, str(old["Id"]), actor)
        return
    at = new["LastModifiedDate"] if old is not None else new["CreatedDate"]
    if old is None or any(old.get(f) != new.get(f) for f in STAGE_HISTORY_FIELDS):
        _history_insert(store, "OpportunityHistory", _stage_row(new, old), at, actor)
    if old is None:
        return
    for name in sorted(tracked_fields(store, "Opportunity")):
        if old.get(name) != new.get(name):
            for row in _field_rows(store, name, old.get(name), new.get(name)):
                _history_insert(
                    store, "OpportunityFieldHistory", {"OpportunityId": new["Id"], **row}, at, actor
                )


def _delete_history(store: SalesforceStore, opportunity_id: str, actor: str) -> None:
    for name in ("OpportunityHistory", "OpportunityFieldHistory"):
        table = store.table(name)
        for rid in sorted(table.ids_where("OpportunityId", opportunity_id)):
            row = table.rows[rid]
            if not row.get("IsDeleted"):
                store.put_row(table, {**row, "IsDeleted": True})


# ---------------------------------------------------------------------------------------------- seeding


def seed_opportunity_history(
    store: SalesforceStore,
    opportunity: Record,
    rows: Iterable[GenFieldChange],
    *,
    convert: Callable[[str, Any], tuple[str, Any] | None],
    derive: Callable[[Any], tuple[Any, Any]],
    actor: str,
) -> tuple[list[Record], list[Record]]:
    """The seeded history rows of one opportunity (OpportunityHistory, OpportunityFieldHistory), without ids.

    ``rows``: the deal's dataset history, in time order; ``convert(field, value)``: a dataset row as the
    opportunity's (field, value), None for fields Salesforce has no history of; ``derive(StageName)``: the
    stage's (Probability, ForecastCategoryName). Without rows: the creation row with the current values.
    """
    tracked = tracked_fields(store, "Opportunity")
    created = opportunity["CreatedDate"]
    by_time: dict[datetime, list[tuple[str, Any]]] = {}
    for change in rows:
        mapped = convert(change.field, change.value)
        if mapped is not None:
            by_time.setdefault(max(to_ms(change.at), created), []).append(mapped)
    if not by_time:
        return [{**_stage_row(opportunity, None), "CreatedDate": created, "CreatedById": actor}], []
    stage_rows: list[Record] = []
    field_rows: list[Record] = []
    state: dict[str, Any] = {}
    for number, at in enumerate(sorted(by_time)):
        before = dict(state)
        state.update(by_time[at])
        if "StageName" in state:
            state["Probability"], state["ForecastCategoryName"] = derive(state["StageName"])
        if number == 0 or any(before.get(f) != state.get(f) for f in STAGE_HISTORY_FIELDS):
            stage = _stage_row({"Id": opportunity["Id"], **state}, before if number else None)
            stage_rows.append({**stage, "CreatedDate": at, "CreatedById": actor})
        if number == 0:
            continue  # the values a record is created with have no field history rows
        for name in sorted(tracked):
            if name in state and before.get(name) != state.get(name):
                for made in _field_rows(store, name, before.get(name), state.get(name)):
                    field_rows.append(
                        {
                            "OpportunityId": opportunity["Id"],
                            **made,
                            "CreatedDate": at,
                            "CreatedById": actor,
                        }
                    )
    return stage_rows, field_rows


def load_history_rows(store: SalesforceStore, stage_rows: list[Record], field_rows: list[Record]) -> None:
    """Give the seeded rows ids and system fields, and load them (indexes rebuild on first use)."""
    for name, rows in (("OpportunityHistory", stage_rows), ("OpportunityFieldHistory", field_rows)):
        table = store.table(name)
        prefix = table.obj.key_prefix
        loaded = []
        for number, row in enumerate(sorted(rows, key=lambda r: (r["CreatedDate"], r["OpportunityId"])), 1):
            complete = {k: v for k, v in row.items() if v is not None}
            complete["Id"] = make_id(prefix, number)
            complete["IsDeleted"] = False
            if name == "OpportunityHistory":
                complete["SystemModstamp"] = complete["CreatedDate"]
            loaded.append(complete)
        table.bulk_load(loaded)


def default_tracking(store: SalesforceStore, *, bare: bool) -> None:
    """What a seeded org tracks: ``HISTORY_TRACKED_BY_DEFAULT`` (only its standard fields in a bare org)."""
    obj = store.schema.get("Opportunity")
    assert obj is not None
    store.history_tracked["opportunity"] = frozenset(
        name
        for name in HISTORY_TRACKED_BY_DEFAULT
        if obj.field(name) is not None and not (bare and name.endswith("__c"))
    )
