"""CRM search (``POST /crm/v3/objects/{type}/search``) over sorted and hashed indexes, no scan per request.

Each object type gets, lazily and only for properties someone filters or sorts on, a sorted list of
``(key, id)`` for numbers, dates and datetimes, and a ``value -> ids`` map for strings and enumerations. Both
are kept true on every write through ``ObjectTable.change_listeners``. A query picks, per filter group, one
filter that an index answers (a range, or EQ/IN), checks the rest on the candidates, ORs the groups, and
sorts; the common incremental-sync query (one ``hs_lastmodifieddate`` window sorted by that property) is a
bisect and a slice.

Semantics chosen where the reference leaves room (sandbox/README.md lists them): string comparisons are
case-insensitive; only the first sort is honoured, ties broken by id in the sort's direction; records
without a value never match range filters and sort last; archived records are never indexed.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from typing import Any

from crm_sandbox.hubspot.records import ObjectTable, Record
from crm_sandbox.hubspot.search_query import (
    RANGE_OPS,
    SORTED_TYPES,
    Filter,
    SearchQuery,
    comparable,
    contains_token,
)

__all__ = ["SearchIndex"]

_HIGH_ID = 1 << 62


class SearchIndex:
    """The indexes of one object table, built on first use and maintained on every change."""

    def __init__(self, table: ObjectTable, prop_type: Callable[[str], str | None]) -> None:
        self.table = table
        self.prop_type = prop_type
        self.sorted: dict[str, list[tuple[Any, int]]] = {}
        self.hashed: dict[str, dict[Any, set[int]]] = {}
        self.version = 0  # bumped on every change: the key of the cached general-path answer
        self._cached: tuple[SearchQuery, int, list[int]] | None = None
        table.change_listeners.append(self._on_change)

    def reset(self) -> None:
        """Forget every index (after the table was restored from a snapshot); they rebuild on use."""
        self.sorted.clear()
        self.hashed.clear()
        self.version += 1
        self._cached = None

    # -- index maintenance -----------------------------------------------------------------------------
    def _key_of(self, record: Record, prop: str, kind: str) -> Any:
        table = self.table
        if kind == "datetime" and prop == table.modified_property:
            return record.updated_ms
        if kind == "datetime" and prop == table.created_property:
            return record.created_ms
        if prop == "hs_object_id":
            return float(record.id) if kind == "number" else str(record.id)
        raw = table.value(record, prop)
        if raw is None:
            return None
        try:
            return comparable(kind, raw)
        except ValueError:
            return None

    def _on_change(self, record: Record, before: bool) -> None:
        self.version += 1
        if record.archived:
            return
        for prop, entries in self.sorted.items():
            key = self._key_of(record, prop, self.prop_type(prop) or "string")
            if key is None:
                continue
            if before:
                at = bisect.bisect_left(entries, (key, record.id))
                if at < len(entries) and entries[at] == (key, record.id):
                    del entries[at]
            else:
                bisect.insort(entries, (key, record.id))
        for prop, buckets in self.hashed.items():
            key = self._key_of(record, prop, "string")
            if key is None:
                continue
            if before:
                bucket = buckets.get(key)
                if bucket is not None:
                    bucket.discard(record.id)
            else:
                buckets.setdefault(key, set()).add(record.id)

    def _sorted_index(self, prop: str, kind: str) -> list[tuple[Any, int]]:
        entries = self.sorted.get(prop)
        if entries is None:
            pairs = ((self._key_of(r, prop, kind), r.id) for r in self.table.iter_live())
            entries = sorted(p for p in pairs if p[0] is not None)
            self.sorted[prop] = entries
        return entries

    def _hashed_index(self, prop: str) -> dict[Any, set[int]]:
        buckets = self.hashed.get(prop)
        if buckets is None:
            buckets = {}
            for record in self.table.iter_live():
                key = self._key_of(record, prop, "string")
                if key is not None:
                    buckets.setdefault(key, set()).add(record.id)
            self.hashed[prop] = buckets
        return buckets

    # -- querying --------------------------------------------------------------------------------------
    def _range(self, f: Filter) -> tuple[list[tuple[Any, int]], int, int]:
        entries = self._sorted_index(f.prop, f.kind)
        lo, hi = 0, len(entries)
        if f.op in ("EQ", "GTE", "BETWEEN"):
            lo = bisect.bisect_left(entries, (f.value, -1))
        elif f.op == "GT":
            lo = bisect.bisect_right(entries, (f.value, _HIGH_ID))
        if f.op == "EQ" or f.op == "LTE":
            hi = bisect.bisect_right(entries, (f.value, _HIGH_ID))
        elif f.op == "LT":
            hi = bisect.bisect_left(entries, (f.value, -1))
        elif f.op == "BETWEEN":
            hi = bisect.bisect_right(entries, (f.high, _HIGH_ID))
        return entries, lo, max(lo, hi)

    def _driver(self, group: tuple[Filter, ...]) -> Filter | None:
        for f in group:
            if f.kind in SORTED_TYPES and f.op in RANGE_OPS:
                return f
        for f in group:
            if f.kind not in SORTED_TYPES and f.op in ("EQ", "IN"):
                return f
        return None

    def _candidates(self, group: tuple[Filter, ...], driver: Filter | None) -> Iterable[int]:
        if driver is None:
            return list(self.table.live)
        if driver.kind in SORTED_TYPES:
            entries, lo, hi = self._range(driver)
            return [entries[i][1] for i in range(lo, hi)]
        buckets = self._hashed_index(driver.prop)
        wanted = [driver.value] if driver.op == "EQ" else list(driver.values)
        found: set[int] = set()
        for value in wanted:
            found |= buckets.get(value, set())
        return found

    def matches(self, record: Record, f: Filter) -> bool:
        """Whether one record passes one filter."""
        raw = self.table.value(record, f.prop)
        if f.op == "HAS_PROPERTY":
            return raw is not None
        if f.op == "NOT_HAS_PROPERTY":
            return raw is None
        if raw is None:
            return f.op in ("NEQ", "NOT_IN", "NOT_CONTAINS_TOKEN")
        if f.op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            found = contains_token(raw.lower(), f.value)
            return found if f.op == "CONTAINS_TOKEN" else not found
        try:
            key = comparable(f.kind, raw if f.kind in SORTED_TYPES else raw.lower())
        except ValueError:
            return False
        if key is None:
            return False
        op = f.op
        if op == "EQ":
            return bool(key == f.value)
        if op == "NEQ":
            return bool(key != f.value)
        if op == "IN":
            return key in f.values
        if op == "NOT_IN":
            return key not in f.values
        if op == "BETWEEN":
            return bool(f.value <= key <= f.high)
        return bool(
            (op == "GT" and key > f.value)
            or (op == "GTE" and key >= f.value)
            or (op == "LT" and key < f.value)
            or (op == "LTE" and key <= f.value)
        )

    def run(
        self, query: SearchQuery, offset: int, limit: int, visible: Callable[[Record], bool] | None
    ) -> tuple[int, list[Record]]:
        """The total number of matches and the page ``[offset, offset + limit)`` in sort order."""
        records = self.table.records
        groups = query.groups or ((),)
        if len(groups) == 1 and query.text is None:
            fast = self._run_ordered(groups[0], query, offset, limit, visible)
            if fast is not None:
                return fast
        cached = self._cached
        if visible is None and cached is not None and cached[0] == query and cached[1] == self.version:
            ordered = cached[2]  # the next page of the same query: worker paging with OR'ed groups
            return len(ordered), [records[i] for i in ordered[offset : offset + limit]]
        matched: set[int] = set()
        for group in groups:
            driver = self._driver(group)
            rest = [f for f in group if f is not driver or driver.kind not in SORTED_TYPES]
            for record_id in self._candidates(group, driver):
                if record_id in matched:
                    continue
                record = records[record_id]
                if all(self.matches(record, f) for f in rest) and self._visible_text(record, query, visible):
                    matched.add(record_id)
        ordered = self._order(matched, query)
        if visible is None:
            self._cached = (query, self.version, ordered)
        return len(ordered), [records[i] for i in ordered[offset : offset + limit]]

    def _run_ordered(
        self,
        group: tuple[Filter, ...],
        query: SearchQuery,
        offset: int,
        limit: int,
        visible: Callable[[Record], bool] | None,
    ) -> tuple[int, list[Record]] | None:
        """The sorted-index path: walk the sort property's index, narrowed by range filters on it.

        Returns None when the general path must answer (the sort property may be missing on matches).
        """
        if query.sort_kind not in SORTED_TYPES:
            return None
        ranged = [f for f in group if f.prop == query.sort_prop and f.op in RANGE_OPS]
        if not ranged and query.sort_prop not in self.table.always_present:
            return None
        entries = self._sorted_index(query.sort_prop, query.sort_kind)
        lo, hi = 0, len(entries)
        for f in ranged:
            _, f_lo, f_hi = self._range(f)
            lo, hi = max(lo, f_lo), min(hi, f_hi)
        hi = max(lo, hi)
        rest = [f for f in group if f not in ranged]
        records = self.table.records
        positions = range(hi - 1, lo - 1, -1) if query.descending else range(lo, hi)
        if not rest and visible is None:
            return hi - lo, [records[entries[i][1]] for i in positions[offset : offset + limit]]
        hits = []
        for i in positions:
            record = records[entries[i][1]]
            if all(self.matches(record, f) for f in rest) and (visible is None or visible(record)):
                hits.append(record)
        return len(hits), hits[offset : offset + limit]

    def _visible_text(
        self, record: Record, query: SearchQuery, visible: Callable[[Record], bool] | None
    ) -> bool:
        if visible is not None and not visible(record):
            return False
        if query.text is None:
            return True
        needle = query.text.lower().strip("*")
        props = self.table.props(record)
        return any(needle in (props.get(name) or "").lower() for name in _TEXT_PROPERTIES) or needle == str(
            record.id
        )

    def _order(self, ids: set[int], query: SearchQuery) -> list[int]:
        """Ids in sort order; ties follow the sort direction by id; missing values last."""
        if query.sort_prop == "hs_object_id":
            return sorted(ids, reverse=query.descending)
        records = self.table.records
        keyed = [(self._key_of(records[i], query.sort_prop, query.sort_kind), i) for i in ids]
        present = sorted((k for k in keyed if k[0] is not None), reverse=query.descending)
        missing = sorted(i for k, i in keyed if k is None)
        return [i for _, i in present] + missing


_TEXT_PROPERTIES = (
    "dealname",
    "firstname",
    "lastname",
    "email",
    "phone",
    "company",
    "name",
    "domain",
    "hs_task_subject",
    "hs_call_title",
    "hs_email_subject",
    "hs_meeting_title",
    "hs_note_body",
)
