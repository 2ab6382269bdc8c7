"""Full and incremental pulls, and the cursor that says where the next one starts.

Cursor (all values strings, opaque to the worker):

    hi            ms: every change up to here is in the batches already returned
    full_at       ms: when the last full reconciliation started
    full_from_id  a full pull in progress: deals up to this id are delivered (resume point)
    full_started  ms: when that full pull started

Incremental (a cursor with ``hi``): the window is ``[hi - look-back, now]``. Deals come from a search on
``hs_lastmodifieddate`` walked in ``hs_object_id`` order (fetch.py: ties and the 10,000 cap handled).
Activity changes do not move a deal's modified date, so every engagement type is searched on its own
``hs_lastmodifieddate`` and mapped to deals through its associations (directly, and through its contacts);
contacts modified in the window (a new contact on a deal, say) are mapped through contact -> deal
associations. Archived deals never show in search: they are listed with ``archived=true`` and reported as
removed when archived in the window. What none of this sees (a label changed on an existing association)
is caught by the full reconciliation every ``full_reconciliation_hours``.

Full (no cursor, or reconciliation due): every live deal in id order, in chunks, each batch carrying a
cursor that resumes after its last deal; the last batch carries ``hi``/``full_at`` = the pull's start.
The cursor only advances in a batch once that batch's deals are part of it: the worker stores the batch,
then the cursor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from connectors.base import ChangeBatch, Cursor, Directory
from connectors.hubspot.aggregate import AggregateBuilder, PullCache
from connectors.hubspot.fetch import Fetcher
from connectors.hubspot.mapping import ENGAGEMENT_TYPES, deal_properties
from connectors.hubspot.options import HubSpotOptions
from connectors.hubspot.values import ms
from policies.model import DealField

log = structlog.get_logger(__name__)

Records = dict[str, Mapping[str, Any]]


class Puller:
    def __init__(
        self,
        fetcher: Fetcher,
        builder: AggregateBuilder,
        options: HubSpotOptions,
        *,
        extra_fields: tuple[str, ...] = (),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._fetcher = fetcher
        self._builder = builder
        self._options = options
        self._extra = extra_fields
        self._now = now

    def _properties(self, directory: Directory) -> list[str]:
        stage_ids = [s.id for p in directory.pipelines.values() for s in p.stages]
        names = {f: self._options.property_for(f) for f in DealField}
        return deal_properties(names, stage_ids, self._extra)

    def pull(self, directory: Directory, cursor: Cursor | None) -> Iterator[ChangeBatch]:
        now = self._now()
        now_ms = ms(now)
        state = dict(cursor or {})
        if "full_from_id" in state:
            yield from self._full(directory, state, int(state["full_started"]), int(state["full_from_id"]))
            return
        full_at = int(state.get("full_at", "0"))
        due = now_ms - full_at >= self._options.full_reconciliation_hours * 3_600_000
        if "hi" not in state or due:
            yield from self._full(directory, state, now_ms, 0)
            return
        yield from self._incremental(directory, state, int(state["hi"]), now_ms)

    # -------------------------------------------------------------------------------------------- full

    def _full(
        self, directory: Directory, state: dict[str, str], started: int, from_id: int
    ) -> Iterator[ChangeBatch]:
        properties = self._properties(directory)
        cache = PullCache()
        # A scheduled reconciliation (the worker has a mirror) also reports every archived deal it can see.
        removed = tuple(self._fetcher.archived_deals(None)) if "hi" in state and from_id == 0 else ()
        pending: Records = {}
        last_id = from_id
        for record in self._fetcher.search("deals", properties, after_id=from_id):
            pending[str(record["id"])] = record
            last_id = int(record["id"])
            if len(pending) >= self._options.deals_per_batch:
                resume = {**_keep(state), "full_from_id": str(last_id), "full_started": str(started)}
                yield self._batch(directory, pending, cache, resume, removed)
                pending, removed = {}, ()
        done = {**_keep(state), "hi": str(started), "full_at": str(started)}
        yield self._batch(directory, pending, cache, done, removed)
        log.info("hubspot_full_pull_done", from_id=from_id, last_id=last_id)

    # ------------------------------------------------------------------------------------- incremental

    def _incremental(
        self, directory: Directory, state: dict[str, str], hi: int, now_ms: int
    ) -> Iterator[ChangeBatch]:
        lo = max(0, hi - int(self._options.search_lookback_seconds * 1000))
        properties = self._properties(directory)
        removed = self._fetcher.archived_deals(lo)
        changed: Records = {
            str(r["id"]): r
            for r in self._fetcher.search("deals", properties, modified_from_ms=lo, modified_to_ms=now_ms)
        }
        via_activity = self._deals_of_changed_activities(lo, now_ms)
        extra_ids = [d for d in via_activity if d not in changed and d not in set(removed)]
        changed.update(self._fetcher.batch_read("deals", extra_ids, properties))
        for deal_id in removed:
            changed.pop(deal_id, None)
        log.info(
            "hubspot_incremental_window",
            lo=lo,
            hi=now_ms,
            deals=len(changed),
            via_activity=len(extra_ids),
            removed=len(removed),
        )
        cache = PullCache()
        ids = sorted(changed, key=int)
        size = self._options.deals_per_batch
        done = {**_keep(state), "hi": str(now_ms)}
        if not ids:
            yield ChangeBatch(removed_deal_ids=tuple(removed), cursor=done)
            return
        for start in range(0, len(ids), size):
            chunk = {i: changed[i] for i in ids[start : start + size]}
            last = start + size >= len(ids)
            yield self._batch(
                directory, chunk, cache, done if last else dict(state), tuple(removed) if start == 0 else ()
            )

    def _deals_of_changed_activities(self, lo: int, hi: int) -> set[str]:
        """Deals whose activities or contacts changed in [lo, hi] (association changes don't touch deals)."""
        deal_ids: set[str] = set()
        contact_ids: set[str] = set()
        for object_type in ENGAGEMENT_TYPES:
            ids = [
                str(r["id"])
                for r in self._fetcher.search(
                    object_type, ["hs_object_id"], modified_from_ms=lo, modified_to_ms=hi
                )
            ]
            if not ids:
                continue
            for links in self._fetcher.associations(object_type, "deals", ids).values():
                deal_ids.update(a.to_id for a in links)
            for links in self._fetcher.associations(object_type, "contacts", ids).values():
                contact_ids.update(a.to_id for a in links)
        contact_ids.update(
            str(r["id"])
            for r in self._fetcher.search(
                "contacts", ["hs_object_id"], modified_from_ms=lo, modified_to_ms=hi
            )
        )
        if contact_ids:
            for links in self._fetcher.associations(
                "contacts", "deals", sorted(contact_ids, key=int)
            ).values():
                deal_ids.update(a.to_id for a in links)
        return deal_ids

    def _batch(
        self,
        directory: Directory,
        records: Records,
        cache: PullCache,
        cursor: Mapping[str, str],
        removed: tuple[str, ...],
    ) -> ChangeBatch:
        deals, rejected = self._builder.build(records, directory, self._now(), cache)
        return ChangeBatch(
            deals=tuple(deals), removed_deal_ids=removed, cursor=dict(cursor), rejected=tuple(rejected)
        )


def _keep(state: Mapping[str, str]) -> dict[str, str]:
    """The cursor without a finished or superseded full pull's resume point."""
    return {k: v for k, v in state.items() if k not in ("full_from_id", "full_started")}
