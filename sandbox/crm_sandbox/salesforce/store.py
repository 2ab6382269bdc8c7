"""The org's records: one table per sObject, with the indexes incremental sync and child subqueries need.

Records are plain dicts from canonical field name to Python value (str, bool, int, float, ``date``, aware
UTC ``datetime`` at millisecond precision), sparse: an absent field is null. A record is never mutated in
place (an update stores a new dict), so ``snapshot()`` is a shallow copy of each table, as
``crm_sandbox.control.SandboxStore`` asks. Deleting sets ``IsDeleted`` (the recycle bin): such rows stay in
table, visible only to queryAll and the ``deleted`` resource.

Indexes: every table keeps its rows in Id order (ids grow with creation), a hash index per lookup field
(child subqueries, ``WhatId IN (...)``) and per external-id field, and a sorted index on SystemModstamp,
LastModifiedDate and CreatedDate, so ``WHERE SystemModstamp > X ORDER BY SystemModstamp`` over 100,000 rows
touches only the changed ones. One re-entrant lock serialises writers and the query evaluator.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crm_sandbox.salesforce.ids import counter_of, make_id
from crm_sandbox.salesforce.schema import ObjectDef, Schema

Record = dict[str, Any]
STAMP_FIELDS = ("SystemModstamp", "LastModifiedDate", "CreatedDate")
_UNINDEXED_LOOKUPS = frozenset({"createdbyid", "lastmodifiedbyid"})


def to_ms(value: datetime) -> datetime:
    """Salesforce keeps datetimes at millisecond precision."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


class SortedIndex:
    """(value, id) pairs in order, for range scans on a datetime field."""

    def __init__(self) -> None:
        self.keys: list[tuple[datetime, str]] = []

    def add(self, value: datetime | None, record_id: str) -> None:
        if value is not None:
            bisect.insort(self.keys, (value, record_id))

    def remove(self, value: datetime | None, record_id: str) -> None:
        if value is None:
            return
        i = bisect.bisect_left(self.keys, (value, record_id))
        if i < len(self.keys) and self.keys[i] == (value, record_id):
            del self.keys[i]

    def range(
        self, low: datetime | None, low_incl: bool, high: datetime | None, high_incl: bool
    ) -> list[str]:
        """Ids whose value lies in the range, in value order."""
        keys = self.keys
        if low is None:
            start = 0
        elif low_incl:
            start = bisect.bisect_left(keys, (low, ""))
        else:
            start = bisect.bisect_left(keys, (low, "\uffff"))
        if high is None:
            end = len(keys)
        elif high_incl:
            end = bisect.bisect_left(keys, (high, "\uffff"))
        else:
            end = bisect.bisect_left(keys, (high, ""))
        return [rid for _, rid in keys[start:end]]


class Table:
    """All rows of one sObject type plus their indexes.

    Indexes are built on first use and maintained from then on, so loading a million activities costs only
    the rows themselves; callers hold the store lock when they read or build one.
    """

    def __init__(self, obj: ObjectDef) -> None:
        self.obj = obj
        self.rows: dict[str, Record] = {}
        self.next_counter = 1
        self.lookup: dict[str, dict[Any, set[str]] | None] = {}
        self.stamps: dict[str, SortedIndex | None] = dict.fromkeys(STAMP_FIELDS)
        self.refresh_index_fields()

    def refresh_index_fields(self) -> None:
        """Index every lookup and external-id field (called again when setup adds a field)."""
        for f in self.obj.fields.values():
            indexed = (f.type == "reference" and f.name.lower() not in _UNINDEXED_LOOKUPS) or f.external_id
            if indexed and f.name not in self.lookup:
                self.lookup[f.name] = None

    def lookup_index(self, name: str) -> dict[Any, set[str]] | None:
        """The hash index of ``name`` (built now if needed), or None when the field is not indexed."""
        if name not in self.lookup:
            return None
        index = self.lookup[name]
        if index is None:
            index = {}
            for rid, rec in self.rows.items():
                value = rec.get(name)
                if value is not None:
                    index.setdefault(value, set()).add(rid)
            self.lookup[name] = index
        return index

    def stamp_index(self, name: str) -> SortedIndex:
        """The sorted index of a timestamp field (built now if needed)."""
        index = self.stamps[name]
        if index is None:
            index = SortedIndex()
            index.keys = sorted(
                (rec[name], rid) for rid, rec in self.rows.items() if rec.get(name) is not None
            )
            self.stamps[name] = index
        return index

    def _index(self, record: Record, add: bool) -> None:
        rid = record["Id"]
        for name, index in self.lookup.items():
            value = record.get(name)
            if index is None or value is None:
                continue
            if add:
                index.setdefault(value, set()).add(rid)
            else:
                ids = index.get(value)
                if ids is not None:
                    ids.discard(rid)
                    if not ids:
                        del index[value]
        for name, sorted_index in self.stamps.items():
            if sorted_index is not None:
                (sorted_index.add if add else sorted_index.remove)(record.get(name), rid)

    def put(self, record: Record) -> Record | None:
        """Store ``record`` (new or replacing the row with its Id); return the previous version."""
        old = self.rows.get(record["Id"])
        if old is not None:
            self._index(old, add=False)
        self.rows[record["Id"]] = record
        self._index(record, add=True)
        return old

    def drop(self, record_id: str) -> None:
        old = self.rows.pop(record_id, None)
        if old is not None:
            self._index(old, add=False)

    def bulk_load(self, records: Iterable[Record]) -> None:
        """Append many records at once; indexes are rebuilt lazily afterwards."""
        rows = self.rows
        for rec in records:
            rows[rec["Id"]] = rec
        self.rebuild_indexes()

    def rebuild_indexes(self) -> None:
        """Drop every index (they rebuild on next use) and move the id counter past the last row."""
        self.lookup = dict.fromkeys(self.lookup)
        self.stamps = dict.fromkeys(STAMP_FIELDS)
        if self.rows:
            self.next_counter = max(self.next_counter, counter_of(next(reversed(self.rows))) + 1)

    def ids_where(self, field_name: str, value: Any) -> set[str]:
        index = self.lookup_index(field_name)
        return index.get(value, set()) if index is not None else set()


@dataclass(frozen=True, slots=True)
class StoreSnapshot:
    rows: dict[str, dict[str, Record]]
    counters: dict[str, int]


class SalesforceStore:
    """Tables of one sandbox org; implements ``crm_sandbox.control.SandboxStore`` (snapshot/restore)."""

    def __init__(self, schema: Schema, now: Callable[[], datetime]) -> None:
        self.schema = schema
        self.now = now
        self.lock = threading.RLock()
        self.tables: dict[str, Table] = {name: Table(obj) for name, obj in schema.objects.items()}
        self.integration_user_id = ""
        self._undo: list[tuple[Table, str, Record | None]] | None = None

    def table(self, obj_name: str) -> Table:
        return self.tables[obj_name.lower()]

    def find(self, record_id: str) -> tuple[Table, Record] | None:
        """The table and row of an id of any type (deleted rows included)."""
        for obj in self.schema.objects_of_prefix(record_id[:3]):
            table = self.tables[obj.name.lower()]
            rec = table.rows.get(record_id)
            if rec is not None:
                return table, rec
        return None

    def new_id(self, table: Table) -> str:
        rid = make_id(table.obj.key_prefix, table.next_counter)
        table.next_counter += 1
        return rid

    def stamp(self) -> datetime:
        return to_ms(self.now())

    # --- writes (callers hold self.lock) -------------------------------------------------------------

    def _put(self, table: Table, record: Record) -> None:
        old = table.put(record)
        if self._undo is not None:
            self._undo.append((table, record["Id"], old))

    def insert(self, table: Table, values: Record, actor_id: str) -> Record:
        """Insert a validated record, adding Id and the system fields."""
        now = self.stamp()
        record: Record = {k: v for k, v in values.items() if v is not None}
        record.update(
            Id=self.new_id(table),
            IsDeleted=False,
            CreatedDate=now,
            CreatedById=actor_id,
            LastModifiedDate=now,
            LastModifiedById=actor_id,
            SystemModstamp=now,
        )
        self._put(table, record)
        return record

    def replace(
        self, table: Table, old: Record, changes: Record, actor_id: str | None, *, stamp: bool = True
    ) -> Record:
        """Store ``old`` with ``changes`` applied.

        ``actor_id`` None is a system change (SystemModstamp only); ``stamp=False`` a recalculated
        read-only field that leaves every timestamp alone.
        """
        record = dict(old)
        for key, value in changes.items():
            if value is None:
                record.pop(key, None)
            else:
                record[key] = value
        now = self.stamp()
        if stamp:
            record["SystemModstamp"] = now
        if stamp and actor_id is not None:
            record["LastModifiedDate"] = now
            record["LastModifiedById"] = actor_id
        self._put(table, record)
        return record

    def soft_delete(self, table: Table, old: Record, actor_id: str) -> Record:
        return self.replace(table, old, {"IsDeleted": True}, actor_id)

    @contextmanager
    def transaction(self) -> Iterator[Callable[[], None]]:
        """Collect an undo log while the block runs; the yielded callable rolls every write back."""
        with self.lock:
            outer = self._undo
            undo: list[tuple[Table, str, Record | None]] = []
            self._undo = undo

            def rollback() -> None:
                for table, rid, old in reversed(undo):
                    if old is None:
                        table.drop(rid)
                    else:
                        table.put(old)
                undo.clear()

            try:
                yield rollback
            finally:
                self._undo = outer
                if outer is not None:
                    outer.extend(undo)

    # --- SandboxStore --------------------------------------------------------------------------------

    def snapshot(self) -> StoreSnapshot:
        with self.lock:
            return StoreSnapshot(
                rows={name: dict(t.rows) for name, t in self.tables.items()},
                counters={name: t.next_counter for name, t in self.tables.items()},
            )

    def restore(self, state: object) -> None:
        assert isinstance(state, StoreSnapshot)
        with self.lock:
            for name, table in self.tables.items():
                table.rows = dict(state.rows.get(name, {}))
                table.next_counter = state.counters.get(name, 1)
                table.rebuild_indexes()
