# ruff: noqa: S608 - values go through soql.quote()/in_list()/datetime_literal(); names come from settings
"""Opportunity histories from Salesforce: ``OpportunityHistory``, ``OpportunityFieldHistory``, and which
fields have history tracking on.

What Salesforce keeps (object reference; docs/backtest.md):

* **OpportunityHistory** (the stage history): a row when an opportunity is created and whenever its Amount,
  Probability, StageName, CloseDate or ForecastCategory changes, holding those fields' values after the
  change (``StageName``, ``Amount``, ``CloseDate``, ``CreatedDate``). Each row is a version of ``stage``
  (the StageName as the policy names it, through ``stage_ids``), ``amount`` and ``close_date``, where they
  differ from the row before. Kept whatever field history tracking says [unverified: whether these rows are
  subject to field history retention].
* **OpportunityFieldHistory**: a row per change of a field whose history tracking is on (``Field``,
  ``OldValue``, ``NewValue``, ``CreatedDate``), none for the value the opportunity was created with: the
  first row's ``OldValue`` is taken as the value since creation. Tracking is per field and set by an admin,
  at most 20 fields per object (60 with Field Audit Trail); formula, roll-up summary and auto-number fields
  cannot be tracked, and text values are kept to 255 characters. History starts when tracking is turned
  on, and is kept 18 months in the org (up to 24 through the API; Field Audit Trail keeps it longer).
  An owner change is reported with ``Field`` ``Owner`` [unverified] in two rows, one with the users' ids and
  one with their names: the rows whose values are ids are read.
* **FieldDefinition.IsFieldHistoryTracked** says which fields are tracked. Fields the policy reads whose
  tracking is off come back in ``untracked`` (the backtest uses their current value throughout) with a
  note telling the admin where to turn tracking on.

Calls. The queries go through the Composite API like every other read of this connector (``client.py``: up
to 5 query pages per call, each page up to 2,000 rows). When the caller hands over every opportunity open
now or modified since a moment (``all_since``, the backtest's full pull), both history objects are read
with one query each, filtered by a semi-join on that same condition, so pages are full: the calls are
``ceil((1 + ceil(R1 / 2000) + ceil(R2 / 2000)) / 5)``, give or take the rounding of two streams, for R1
stage-history and R2 field-history rows (and the FieldDefinition page). Otherwise (a few changed deals)
they are read by ``OpportunityId IN (...)`` chunks of ``ids_per_query`` ids, the chunks' queries bundled
five to a call. Opportunities a filtered read missed (changed between the opportunity pull and this one)
are read by id afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connectors import values as bounds
from connectors.base import RejectedRecord
from connectors.history import OWN_FIELDS, FieldVersion, HistoryRead, Reader, canonical_readers, read_text
from connectors.salesforce import soql
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.values import read_date, read_datetime
from connectors.values import UNREADABLE, BadValue, read_number
from policies.model import Deal, DealField, FieldValue

# Field history is kept 18 months in the org (Salesforce Help, "Field History Tracking"); up to 24 months
# are said to be readable through the API [unverified here], so the history is said to start 18 months back.
RETENTION = timedelta(days=548)
OWNER_FIELD_NAMES = ("Owner", "OwnerId")  # how OpportunityFieldHistory names owner changes [unverified]
MAX_TRACKED = 20


def _scalar(name: str, value: Any) -> FieldValue:
    return bounds.scalar(name, value)


_CANONICAL = canonical_readers(read_date, read_number)


@dataclass(frozen=True, slots=True)
class TrackedField:
    sf_name: str  # the Opportunity field
    field: str  # the history field name (``owner``, a DealField value, an extra field's name)
    reader: Reader


def tracked_fields(opportunity_fields: Mapping[DealField, str], extra: Iterable[str]) -> list[TrackedField]:
    """The Opportunity fields whose field history the backtest reads, with their history names."""
    fields = [TrackedField("OwnerId", "owner", read_text)]
    for field, reader in _CANONICAL.items():
        if field not in OWN_FIELDS and field in opportunity_fields:
            fields.append(TrackedField(opportunity_fields[field], field.value, reader))
    seen = {f.sf_name for f in fields}
    fields.extend(TrackedField(name, name, _scalar) for name in extra if name not in seen)
    return fields


# ------------------------------------------------------------------------------------------------ queries

STAGE_FIELDS = "OpportunityId, StageName, Amount, CloseDate, CreatedDate"
CHANGE_FIELDS = "OpportunityId, Field, OldValue, NewValue, CreatedDate"


def tracking_query() -> str:
    return (
        "SELECT QualifiedApiName, IsFieldHistoryTracked FROM FieldDefinition "
        "WHERE EntityDefinition.QualifiedApiName = 'Opportunity'"
    )


def in_scope(since: datetime) -> str:
    """The opportunities a backtest from ``since`` looks at: open, or changed since (closed in the period)."""
    changed = f"LastModifiedDate >= {soql.datetime_literal(since)}"
    return f"(SELECT Id FROM Opportunity WHERE IsClosed = false OR {changed})"


def stage_history(where: str) -> str:
    return (
        f"SELECT {STAGE_FIELDS} FROM OpportunityHistory WHERE {where} ORDER BY OpportunityId, CreatedDate, Id"
    )


def field_history(field_names: Iterable[str], where: str) -> str:
    return (
        f"SELECT {CHANGE_FIELDS} FROM OpportunityFieldHistory WHERE Field IN {soql.in_list(field_names)} "
        f"AND {where} ORDER BY OpportunityId, CreatedDate, Id"
    )


# ------------------------------------------------------------------------------------------------ mapping


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and len(value) in (15, 18) and value.isalnum()


def stage_versions(rows: Sequence[Mapping[str, Any]], stage_ids: Mapping[str, str]) -> list[FieldVersion]:
    """OpportunityHistory rows (one opportunity, any order) as versions of stage, amount and close date."""
    out: list[FieldVersion] = []
    previous: dict[str, FieldValue] | None = None
    for row in sorted(rows, key=lambda r: str(r.get("CreatedDate"))):
        where = f"OpportunityHistory.{row.get('OpportunityId')}@{row.get('CreatedDate')}"
        at = read_datetime(where + ".CreatedDate", row.get("CreatedDate"))
        if at is None:
            raise BadValue(where + ".CreatedDate", UNREADABLE, "a history row without a time")
        name = bounds.text(where + ".StageName", row.get("StageName"))
        values: dict[str, FieldValue] = {
            "stage": stage_ids.get(name, name) if name else None,
            "amount": read_number(where + ".Amount", row.get("Amount")),
            "close_date": read_date(where + ".CloseDate", row.get("CloseDate")),
        }
        if values["stage"] is None:
            values.pop("stage")  # a stage is never empty: such a row says nothing about it
        for field, value in values.items():
            if previous is None and value is None:
                continue  # empty from the start: no version (an empty field before its first one reads so)
            if previous is None or previous.get(field) != value:
                out.append(FieldVersion(at, field, value))
        previous = values
    return out


def change_versions(
    rows: Sequence[Mapping[str, Any]], fields: Mapping[str, TrackedField], created: datetime
) -> list[FieldVersion]:
    """OpportunityFieldHistory rows (one opportunity) as versions: per field, the first row's old value
    since ``created``, then each new value."""
    by_field: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        name = str(row.get("Field") or "")
        if name in OWNER_FIELD_NAMES:
            if not all(v is None or _is_id(v) for v in (row.get("OldValue"), row.get("NewValue"))):
                continue  # the row of the owners' names; its twin holds the ids
            name = "OwnerId"
        if name in fields:
            by_field.setdefault(name, []).append(row)
    out: list[FieldVersion] = []
    for name, found in by_field.items():
        tracked = fields[name]
        for number, row in enumerate(sorted(found, key=lambda r: str(r.get("CreatedDate")))):
            where = f"OpportunityFieldHistory.{row.get('OpportunityId')}.{name}@{row.get('CreatedDate')}"
            at = read_datetime(where, row.get("CreatedDate"))
            if at is None:
                raise BadValue(where, UNREADABLE, "a history row without a time")
            if number == 0:
                before = tracked.reader(where, row.get("OldValue"))
                if before is not None:  # empty since creation reads as empty before the first version
                    out.append(FieldVersion(min(created, at), tracked.field, before))
            out.append(FieldVersion(at, tracked.field, tracked.reader(where, row.get("NewValue"))))
    return out


def untracked_note(untracked: Sequence[TrackedField]) -> str:
    named = ", ".join(f"{f.sf_name} ({f.field})" for f in untracked)
    return (
        "Salesforce keeps no history of these Opportunity fields, because their history tracking is off: "
        f"{named}. The backtest uses their current values throughout the period. Turn tracking on in "
        "Setup > Object Manager > Opportunity > Fields & Relationships > Set History Tracking (at most "
        f"{MAX_TRACKED} fields per object, 60 with Field Audit Trail); Salesforce records their changes "
        "from then on."
    )


class HistoryReader:
    """Reads opportunity histories for a set of deals (see the module docstring)."""

    def __init__(
        self,
        api: SalesforceClient,
        *,
        opportunity_fields: Mapping[DealField, str],
        stage_ids: Mapping[str, str],
        extra_fields: Sequence[str],
        ids_per_query: int,
        now: datetime,
    ) -> None:
        self._api = api
        self._fields = {f.sf_name: f for f in tracked_fields(opportunity_fields, extra_fields)}
        self._stage_ids = stage_ids
        self._ids_per_query = ids_per_query
        self._now = now

    def _field_names(self) -> list[str]:
        names = [n for n in self._fields if n != "OwnerId"]
        return [*names, *OWNER_FIELD_NAMES]

    def read(self, deals: Sequence[Deal], *, all_since: datetime | None = None) -> HistoryRead:
        wanted = {d.id: d for d in deals}
        stage_rows: dict[str, list[Mapping[str, Any]]] = {}
        change_rows: dict[str, list[Mapping[str, Any]]] = {}
        tracking: dict[str, bool] = {}
        if all_since is not None:
            where = f"OpportunityId IN {in_scope(all_since)}"
            queries = [tracking_query(), stage_history(where), field_history(self._field_names(), where)]
            self._run(queries, wanted, stage_rows, change_rows, tracking)
            missed = [i for i in wanted if i not in stage_rows]  # every opportunity has a creation row
            if missed:
                self._run(self._by_ids(missed), wanted, stage_rows, change_rows, tracking)
        else:
            self._run(
                [tracking_query(), *self._by_ids(list(wanted))], wanted, stage_rows, change_rows, tracking
            )
        return self._mapped(wanted, stage_rows, change_rows, tracking)

    def _by_ids(self, ids: Sequence[str]) -> list[str]:
        queries: list[str] = []
        for chunk in soql.chunked(list(ids), self._ids_per_query):
            where = f"OpportunityId IN {soql.in_list(chunk)}"
            queries += [stage_history(where), field_history(self._field_names(), where)]
        return queries

    def _run(
        self,
        queries: Sequence[str],
        wanted: Mapping[str, Deal],
        stage_rows: dict[str, list[Mapping[str, Any]]],
        change_rows: dict[str, list[Mapping[str, Any]]],
        tracking: dict[str, bool],
    ) -> None:
        """Every page of ``queries`` (bundled five to a call); rows land by opportunity."""
        kinds = [
            "tracking"
            if q.startswith("SELECT QualifiedApiName")
            else "stage"
            if "FROM OpportunityHistory" in q
            else "change"
            for q in queries
        ]
        for number, records in self._api.pages_each(queries):
            kind = kinds[number]
            for row in records:
                if kind == "tracking":
                    tracking[str(row.get("QualifiedApiName"))] = bool(row.get("IsFieldHistoryTracked"))
                    continue
                deal_id = str(row.get("OpportunityId"))
                if deal_id in wanted:
                    (stage_rows if kind == "stage" else change_rows).setdefault(deal_id, []).append(row)

    def _mapped(
        self,
        wanted: Mapping[str, Deal],
        stage_rows: Mapping[str, list[Mapping[str, Any]]],
        change_rows: Mapping[str, list[Mapping[str, Any]]],
        tracking: Mapping[str, bool],
    ) -> HistoryRead:
        changes: dict[str, tuple[FieldVersion, ...]] = {}
        rejected: list[RejectedRecord] = []
        for deal_id, deal in wanted.items():
            try:
                versions = stage_versions(stage_rows.get(deal_id, []), self._stage_ids)
                versions += change_versions(change_rows.get(deal_id, []), self._fields, deal.created_at)
            except BadValue as bad:
                rejected.append(RejectedRecord.of(bad.skip("Opportunity", deal_id, "history: ")))
                continue
            changes[deal_id] = tuple(versions)
        off = [f for name, f in self._fields.items() if not tracking.get(name, False)]
        return HistoryRead(
            changes=changes,
            untracked=tuple(f.field for f in off),
            since=self._now - RETENTION,
            rejected=tuple(rejected),
            notes=(untracked_note(off),) if off else (),
        )
