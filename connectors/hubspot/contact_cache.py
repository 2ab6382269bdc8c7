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
    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a contact cache holds at least one contact")
        self.size = size
        self.reads = 0  # contacts read from HubSpot, a contact read again after its eviction included
        self._entries: OrderedDict[str, ContactEntry] = OrderedDict()
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
    ) -> ContactEntry:
        """Keep a contact just read, with those of its engagements HubSpot has (found in ``engagements``)."""
        if contact_id in self._entries:
            self._release(contact_id)
        entry = ContactEntry(record, tuple(p for p in pairs if p in engagements))
        self._entries[contact_id] = entry
        for pair in entry.engagements:
            self._refs[pair] += 1
            self._engagements[pair] = engagements[pair]
        while len(self._entries) > self.size:
            self._release(next(iter(self._entries)))
        return entry

    def _release(self, contact_id: str) -> None:
        for pair in self._entries.pop(contact_id).engagements:
            self._refs[pair] -= 1
            if self._refs[pair] <= 0:
                del self._refs[pair]
                del self._engagements[pair]
