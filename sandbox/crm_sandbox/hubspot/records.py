"""The records of one object type: storage, id-ordered paging, and the hooks that keep search indexes true.

A record's properties are rendered from the dataset only when first touched (``Record.source`` plus a
renderer), so loading 100,000 deals and a million engagements costs one small object per record, not a
million dicts. Ids are ints internally and decimal strings on the wire, as HubSpot's are. A stored record is
never changed: ``update`` and ``archive`` store a new one, so snapshots share records safely (the one
in-place step, rendering properties on first read, is deterministic).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from typing import Any

from crm_sandbox.hubspot.render import iso_ms

__all__ = ["ObjectTable", "Record"]

Renderer = Callable[[Any], dict[str, str]]


class Record:
    """One CRM object. ``props`` holds only set values; an absent key reads as ``null``."""

    __slots__ = (
        "_props",
        "archived",
        "archived_ms",
        "created_ms",
        "id",
        "json_cache",
        "source",
        "updated_ms",
    )

    def __init__(
        self,
        record_id: int,
        created_ms: int,
        updated_ms: int,
        props: dict[str, str] | None = None,
        source: Any = None,
    ) -> None:
        self.id = record_id
        self.created_ms = created_ms
        self.updated_ms = updated_ms
        self.archived = False
        self.archived_ms: int | None = None
        self._props = props
        self.source = source
        # (plan, body, older plan, older body) of the last two reads with different property lists: valid as
        # long as this object, because a write stores a new Record (see ObjectTable.update)
        self.json_cache: tuple[Any, ...] | None = None


class ObjectTable:
    """All records of one type, with ``live``/``archived`` id lists kept sorted for cursor paging."""

    def __init__(
        self, object_type: str, renderer: Renderer, modified_property: str, created_property: str
    ) -> None:
        self.object_type = object_type
        self.records: dict[int, Record] = {}
        self.live: list[int] = []
        self.archived: list[int] = []
        self.next_id = 1
        self._renderer = renderer
        self.modified_property = modified_property
        self.created_property = created_property
        self.always_present = frozenset({"hs_object_id", modified_property, self.created_property})
        # called with (record, before) where before is True just ahead of a change, False just after
        self.change_listeners: list[Callable[[Record, bool], None]] = []

    # -- loading ---------------------------------------------------------------------------------------
    def load(self, records: list[Record]) -> None:
        """Bulk-insert records (ids ascending or not); used only before serving."""
        for record in records:
            self.records[record.id] = record
        self.live = sorted(r.id for r in records if not r.archived)
        self.archived = sorted(r.id for r in records if r.archived)
        if self.records:
            self.next_id = max(self.next_id, max(self.records) + 1)

    # -- reading ---------------------------------------------------------------------------------------
    def props(self, record: Record) -> dict[str, str]:
        """The record's stored properties, rendered from its source on first use."""
        props = record._props
        if props is None:
            props = self._renderer(record.source) if record.source is not None else {}
            record._props = props
        return props

    def value(self, record: Record, name: str) -> str | None:
        """One property as HubSpot returns it, system properties included."""
        if name == "hs_object_id":
            return str(record.id)
        if name == self.modified_property:
            return iso_ms(record.updated_ms)
        if name == self.created_property:
            return iso_ms(record.created_ms)
        return self.props(record).get(name)

    def get(self, record_id: int, *, archived: bool = False) -> Record | None:
        record = self.records.get(record_id)
        if record is None or record.archived != archived:
            return None
        return record

    def page(self, after: int, limit: int, *, archived: bool) -> tuple[list[Record], int | None]:
        """Up to ``limit`` records with id > ``after``; the cursor for the next page, or None when last."""
        ids = self.archived if archived else self.live
        start = bisect.bisect_right(ids, after)
        chosen = ids[start : start + limit]
        more = start + limit < len(ids)
        return [self.records[i] for i in chosen], (chosen[-1] if more and chosen else None)

    def iter_live(self) -> Iterator[Record]:
        records = self.records
        for record_id in self.live:
            yield records[record_id]

    # -- writing ---------------------------------------------------------------------------------------
    def insert(self, props: dict[str, str], now_ms: int) -> Record:
        record = Record(self.next_id, now_ms, now_ms, props)
        self.next_id += 1
        props[self.created_property] = iso_ms(now_ms)
        self.records[record.id] = record
        self.live.append(record.id)  # ids only grow, so the list stays sorted
        for listener in self.change_listeners:
            listener(record, False)
        return record

    def update(self, record: Record, changes: dict[str, str | None], now_ms: int) -> Record:
        """Apply property changes (None or "" clears), bump the modification time; returns the new record.

        Records are replaced, never changed in place, so a snapshot is a shallow copy of ``records``.
        """
        for listener in self.change_listeners:
            listener(record, True)
        props = dict(self.props(record))
        for name, value in changes.items():
            if value is None or value == "":
                props.pop(name, None)
            else:
                props[name] = value
        fresh = Record(record.id, record.created_ms, max(now_ms, record.updated_ms), props, record.source)
        fresh.archived, fresh.archived_ms = record.archived, record.archived_ms
        self.records[record.id] = fresh
        for listener in self.change_listeners:
            listener(fresh, False)
        return fresh

    def archive(self, record: Record, now_ms: int) -> None:
        """Move to the recycle bin; HubSpot does not bump the modification date when archiving."""
        for listener in self.change_listeners:
            listener(record, True)
        fresh = Record(record.id, record.created_ms, record.updated_ms, record._props, record.source)
        fresh.archived, fresh.archived_ms = True, now_ms
        self.records[record.id] = fresh
        position = bisect.bisect_left(self.live, record.id)
        if position < len(self.live) and self.live[position] == record.id:
            del self.live[position]
        bisect.insort(self.archived, record.id)

    # -- snapshots -------------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "records": dict(self.records),  # records are immutable once stored: see update()
            "live": list(self.live),
            "archived": list(self.archived),
            "next_id": self.next_id,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.records = dict(state["records"])
        self.live = list(state["live"])
        self.archived = list(state["archived"])
        self.next_id = state["next_id"]
