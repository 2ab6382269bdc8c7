"""A full pull's mapped deals and contact touches on disk until its last page: memory flat in the org's size.

A touch logged on a contact counts for every deal of that contact (``activities.contact_touches``), and
that deal may come on any page of the full pull, earlier or later. So no deal is complete before the last
page. Instead of holding the mapped deals and the touches in memory (about 5 kB per deal with 15
activities: 0.5 GB at 100,000 deals), the pull hands each page's deals and the touches logged on contacts to
a ``DealSpill`` and reads the deals back at the end, a batch at a time, each batch with the touches of its
contacts, looked up by contact id.

The spill is SQLite's private temporary database (``sqlite3.connect("")``): a file in SQLite's temporary
directory (``SQLITE_TMPDIR``, else ``TMPDIR``, else ``/var/tmp``, ``/usr/tmp``, ``/tmp``) that SQLite
unlinks as it opens it: nothing else can open it, and its space comes back when the connection closes or
the process ends, a crash included. Its page cache is bounded at ``CACHE_KIB``; beyond that, pages go to
the file. In memory: the page being read, one batch being handed out, and that cache. A page's deals are
one pickle (the bytes are ours, written and read by this process, never a CRM's); touches are rows, read
back by contact, and only those another deal of the batch takes (``touches_for``).
"""

from __future__ import annotations

import copyreg
import dataclasses
import io
import pickle
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

from connectors.values import BadValue
from policies import model
from policies.model import Activity, ActivityKind, Deal, Direction, Outcome

CACHE_KIB = 8 * 1024  # SQLite's page cache for the spill: its whole share of memory
_PARAMETERS = 500  # contact ids per look-up, well under SQLite's bound on host parameters

Touch = Activity | BadValue
ContactIndex = dict[str, list[tuple[str | None, Touch]]]


# The model's dataclasses pickled as a call of their constructor with their fields in order: a slotted
# dataclass's own pickling calls dataclasses.fields() for every object, in and out (3x the CPU).
_FIELDS: dict[type, tuple[str, ...]] = {
    kind: tuple(f.name for f in dataclasses.fields(kind))
    for kind in vars(model).values()
    if isinstance(kind, type)
    and dataclasses.is_dataclass(kind)
    and not any(f.kw_only for f in dataclasses.fields(kind))
}


def _by_constructor(value: Any) -> tuple[type, tuple[Any, ...]]:
    kind = type(value)
    return kind, tuple(getattr(value, name) for name in _FIELDS[kind])


_DISPATCH = {**copyreg.dispatch_table, **dict.fromkeys(_FIELDS, _by_constructor)}


def _dumps(value: object) -> bytes:
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _DISPATCH
    pickler.dump(value)
    return buffer.getvalue()


# A touch is stored as columns, not pickled: read back by the hundred thousand, it is rebuilt from text
# with dictionary look-ups for its enums (tests pin the columns to Activity's fields).
TOUCH_COLUMNS = ("id", "kind", "direction", "occurred_at", "outcome", "contact_ids", "created_by_followup")
_KINDS = {m.value: m for m in ActivityKind}
_DIRECTIONS = {m.value: m for m in Direction}
_OUTCOMES = {m.value: m for m in Outcome}
_SEPARATOR = "\x1f"  # between contact ids (ids never hold control characters)
_Row = tuple[str, str | None, str, str | None, str | None, str | None, str | None, str | None, int]


def _touch_row(who: str, what: str | None, touch: Touch) -> _Row:
    if isinstance(touch, BadValue):  # kept by its parts: the deals of this contact are rejected with it
        return (who, what, touch.field, None, touch.reason, None, touch.detail, None, -1)
    return (
        who,
        what,
        touch.id,
        touch.kind.value,
        touch.direction.value,
        touch.occurred_at.isoformat(),
        touch.outcome.value,
        _SEPARATOR.join(touch.contact_ids),
        int(touch.created_by_followup),
    )


def _touch_of(row: _Row) -> Touch:
    _, _, ident, kind, direction, occurred_at, outcome, contacts, ours = row
    if ours < 0:
        return BadValue(ident, str(direction), str(outcome))
    return Activity(
        ident,
        _KINDS[str(kind)],
        _DIRECTIONS[str(direction)],
        datetime.fromisoformat(str(occurred_at)),
        _OUTCOMES[str(outcome)],
        tuple(contacts.split(_SEPARATOR)) if contacts else (),
        bool(ours),
    )


class DealSpill:
    """Mapped deals in the order they were added, and the touches logged on contacts, by contact id."""

    def __init__(self) -> None:
        # one user at a time (the pull's generator), but not always the thread that opened it: a generator
        # left unfinished is closed by whichever thread lets it go
        self._db = sqlite3.connect("", check_same_thread=False)
        self._db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute("CREATE TABLE pages (seq INTEGER PRIMARY KEY, deals BLOB NOT NULL)")
        self._db.execute(
            "CREATE TABLE touches (who TEXT NOT NULL, what TEXT, id TEXT NOT NULL, kind TEXT, direction TEXT,"
            " occurred_at TEXT, outcome TEXT, contact_ids TEXT, ours INTEGER NOT NULL)"
        )
        self._indexed = False
        self.deals = 0

    def __enter__(self) -> DealSpill:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def page_cache_kib(self) -> int:
        """The bound on SQLite's page cache for the spill, as SQLite reports it."""
        (value,) = self._db.execute("PRAGMA cache_size").fetchone()
        return -int(value)

    @property
    def size_bytes(self) -> int:
        """The spill's database as SQLite reports it (pages in use times the page size)."""
        (pages,) = self._db.execute("PRAGMA page_count").fetchone()
        (page_size,) = self._db.execute("PRAGMA page_size").fetchone()
        return int(pages) * int(page_size)

    def close(self) -> None:
        """Close the database; SQLite deletes its file."""
        self._db.close()

    def add(self, deals: Sequence[Deal], touches: Iterable[tuple[str, str | None, Touch]]) -> None:
        """One page: its mapped deals, and its touches logged on contacts (contact, related id, touch)."""
        if self._indexed:
            raise RuntimeError("the spill is being read: nothing can be added to it")
        if deals:
            blob = _dumps(list(deals))
            self._db.execute("INSERT INTO pages (deals) VALUES (?)", (blob,))
            self.deals += len(deals)
        self._db.executemany(
            "INSERT INTO touches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (_touch_row(who, what, touch) for who, what, touch in touches),
        )

    def batches(self, size: int) -> Iterator[tuple[list[Deal], ContactIndex]]:
        """The deals in batches of ``size`` (the last one shorter), each with the touches on its contacts
        that one of its deals takes from another record (``touches_for``)."""
        if not self._indexed:
            self._db.execute("CREATE INDEX touches_by_contact ON touches (who)")
            self._indexed = True
        batch: list[Deal] = []
        for (blob,) in self._db.execute("SELECT deals FROM pages ORDER BY seq"):
            page: list[Deal] = pickle.loads(blob)  # noqa: S301 - our own bytes, from our private database
            for deal in page:
                batch.append(deal)
                if len(batch) == size:
                    yield batch, self.touches_for(batch)
                    batch = []
        if batch:
            yield batch, self.touches_for(batch)

    def touches_for(self, deals: Sequence[Deal]) -> ContactIndex:
        """The touches logged on the contacts of ``deals``, by contact id, in the order they were added;
        left out, unread: a touch whose contact has no deal here but the one it was logged on (that deal
        has it already, ``mapping.add_contact_touches``)."""
        deals_of: dict[str, set[str]] = {}
        for deal in deals:
            for contact in deal.contacts:
                deals_of.setdefault(contact.id, set()).add(deal.id)
        contacts = sorted(deals_of)
        index: ContactIndex = {}
        for start in range(0, len(contacts), _PARAMETERS):
            chunk = contacts[start : start + _PARAMETERS]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT * FROM touches WHERE who IN ({marks}) ORDER BY rowid"  # noqa: S608
            for row in self._db.execute(query, chunk):  # only "?" placeholders went into the text
                who, what = row[0], row[1]
                if deals_of[who] != {what}:
                    index.setdefault(who, []).append((what, _touch_of(row)))
        return index
