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
the file. In memory: the page being read, one batch being handed out, and that cache. The bytes are ours
(pickled by this process, read back by it), never a CRM's.
"""

from __future__ import annotations

import pickle
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType

from connectors.values import BadValue
from policies.model import Activity, Deal

CACHE_KIB = 8 * 1024  # SQLite's page cache for the spill: its whole share of memory
_PARAMETERS = 500  # contact ids per look-up, well under SQLite's bound on host parameters

Touch = Activity | BadValue
ContactIndex = dict[str, list[tuple[str | None, Touch]]]


def _encode_touch(touch: Touch) -> bytes:
    # BadValue is an exception whose constructor takes three arguments: pickled by its parts
    parts = ("bad", touch.field, touch.reason, touch.detail) if isinstance(touch, BadValue) else touch
    return pickle.dumps(parts, protocol=pickle.HIGHEST_PROTOCOL)


def _decode_touch(data: bytes) -> Touch:
    value = pickle.loads(data)  # noqa: S301 - our own bytes, from this process's private temporary database
    if isinstance(value, tuple):
        _, field, reason, detail = value
        return BadValue(field, reason, detail)
    assert isinstance(value, Activity)
    return value


class DealSpill:
    """Mapped deals in the order they were added, and the touches logged on contacts, by contact id."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("")
        self._db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute("CREATE TABLE pages (seq INTEGER PRIMARY KEY, deals BLOB NOT NULL)")
        self._db.execute("CREATE TABLE touches (who TEXT NOT NULL, what TEXT, touch BLOB NOT NULL)")
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
            blob = pickle.dumps(list(deals), protocol=pickle.HIGHEST_PROTOCOL)
            self._db.execute("INSERT INTO pages (deals) VALUES (?)", (blob,))
            self.deals += len(deals)
        self._db.executemany(
            "INSERT INTO touches (who, what, touch) VALUES (?, ?, ?)",
            ((who, what, _encode_touch(touch)) for who, what, touch in touches),
        )

    def batches(self, size: int) -> Iterator[tuple[list[Deal], ContactIndex]]:
        """The deals in batches of ``size`` (the last one shorter), each with the touches on its contacts."""
        if not self._indexed:
            self._db.execute("CREATE INDEX touches_by_contact ON touches (who)")
            self._indexed = True
        batch: list[Deal] = []
        for (blob,) in self._db.execute("SELECT deals FROM pages ORDER BY seq"):
            page: list[Deal] = pickle.loads(blob)  # noqa: S301 - our own bytes, as above
            for deal in page:
                batch.append(deal)
                if len(batch) == size:
                    yield batch, self.touches_of(c.id for d in batch for c in d.contacts)
                    batch = []
        if batch:
            yield batch, self.touches_of(c.id for d in batch for c in d.contacts)

    def touches_of(self, contact_ids: Iterable[str]) -> ContactIndex:
        """The touches logged on these contacts, by contact id, in the order they were added."""
        contacts = sorted(set(contact_ids))
        index: ContactIndex = {}
        for start in range(0, len(contacts), _PARAMETERS):
            chunk = contacts[start : start + _PARAMETERS]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT who, what, touch FROM touches WHERE who IN ({marks}) ORDER BY rowid"  # noqa: S608
            rows = self._db.execute(query, chunk)  # only "?" placeholders went into the text
            for who, what, touch in rows:
                index.setdefault(who, []).append((what, _decode_touch(touch)))
        return index
