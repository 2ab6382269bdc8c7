"""The contacts a pull has read, with their engagements: the most recently used ``size`` of them.

A contact on several deals is read once for all of them while it stays in the cache (its record, its
engagement associations of every type, and those engagements mapped). Deals come in id order and a
company's deals are anywhere in it, so the cache is bounded (``HubSpotOptions.contact_cache_size``): when
it is full the least recently used contact is let go, and a deal that needs it later reads it again (one
more contact in a batch read, its engagements in theirs). ``reads`` counts every contact read, a re-read
included, so the cost of a smaller bound can be measured (``bench/bench_hubspot_cache.py``).

Engagements are held once however many cached contacts share them (a reference count per engagement), and
only while one of those contacts is cached: what the cache holds is bounded by ``size`` contacts and their
engagements, whatever the number of deals a pull walks.
"""

from __future__ import annotations

import heapq
from collections import Counter, OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connectors.hubspot.aggregate import Engagement

Pair = tuple[str, str]  # (engagement type, engagement id)


@dataclass(frozen=True, slots=True)
class ContactEntry:
    """One contact as a pull needs it: its record (None when HubSpot no longer has it) and the engagements
    associated with it that HubSpot has."""

    record: Mapping[str, Any] | None
    engagements: tuple[Pair, ...]


class ContactCache:
    """Contacts by id, least recently used let go first beyond ``size``.

    ``ordered``: the pull walks deals in ascending id order (a full pull). Then each contact is kept only
    ``until`` the last of its deals (``put``), and let go as soon as the pull has passed it (``passed``):
    a contact on one deal, or on deals all behind the pull, is never kept, so the bound is spent on the
    contacts later deals still need.
    """

    def __init__(self, size: int, *, ordered: bool = False) -> None:
        if size < 1:
            raise ValueError("a contact cache holds at least one contact")
        self.size = size
        self.ordered = ordered
        self.reads = 0  # contacts read from HubSpot, a contact read again after its eviction included
        self._entries: OrderedDict[str, ContactEntry] = OrderedDict()
        self._until: dict[str, int] = {}  # ordered: contact -> the id of the last deal it is on
        self._due: list[tuple[int, str]] = []  # ordered: heap of (until, contact)
        self._engagements: dict[Pair, Engagement] = {}
        self._refs: Counter[Pair] = Counter()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def engagement_count(self) -> int:
        return len(self._engagements)

    def get(self, contact_id: str) -> ContactEntry | None:
        """The cached contact (now the most recently used), or None when it has to be read."""
        entry = self._entries.get(contact_id)
        if entry is not None:
            self._entries.move_to_end(contact_id)
        return entry

    def engagement(self, pair: Pair) -> Engagement | None:
        return self._engagements.get(pair)

    def put(
        self,
        contact_id: str,
        record: Mapping[str, Any] | None,
        pairs: tuple[Pair, ...],
        engagements: Mapping[Pair, Engagement],
        *,
        until: int | None = None,
        position: int | None = None,
    ) -> ContactEntry:
        """A contact just read, with those of its engagements HubSpot has (found in ``engagements``); kept
        unless the cache is ``ordered`` and the last of its deals (``until``) is not past ``position``."""
        entry = ContactEntry(record, tuple(p for p in pairs if p in engagements))
        if self.ordered and until is not None and position is not None and until <= position:
            return entry  # no deal after this point needs it
        if contact_id in self._entries:
            self._release(contact_id)
        self._entries[contact_id] = entry
        if self.ordered and until is not None:
            self._until[contact_id] = until
            heapq.heappush(self._due, (until, contact_id))
            if len(self._due) > 2 * self.size + 64:  # left by contacts let go early: bounded with the rest
                self._due = [(u, c) for c, u in self._until.items()]
                heapq.heapify(self._due)
        for pair in entry.engagements:
            self._refs[pair] += 1
            self._engagements[pair] = engagements[pair]
        while len(self._entries) > self.size:
            self._release(next(iter(self._entries)))
        return entry

    def passed(self, position: int) -> None:
        """An ordered pull has built every deal up to id ``position``: let go contacts of no later deal."""
        while self._due and self._due[0][0] <= position:
            until, contact_id = heapq.heappop(self._due)
            if self._until.get(contact_id) == until:
                self._release(contact_id)

    def _release(self, contact_id: str) -> None:
        self._until.pop(contact_id, None)
        for pair in self._entries.pop(contact_id).engagements:
            self._refs[pair] -= 1
            if self._refs[pair] <= 0:
                del self._refs[pair]
                del self._engagements[pair]
