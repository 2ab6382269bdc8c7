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

Our own writes are not news (no self-echo, echo.py): with ``known`` (the worker's mirror), an incremental
pull leaves out the deals and tasks whose only change is ours, and hands back the new stamps of deals that
moved only by roll-ups (``ChangeBatch.restamped``, on the batch that carries the new cursor).

Full (no cursor, or reconciliation due): every live deal in id order, in chunks, each batch carrying a
cursor that resumes after its last deal; the last batch carries ``hi``/``full_at`` = the pull's start.
The cursor only advances in a batch once that batch's deals are part of it: the worker stores the batch,
then the cursor.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from connectors.base import ChangeBatch, Cursor, Directory, KnownDeals
from connectors.hubspot.aggregate import AggregateBuilder
from connectors.hubspot.contact_cache import ContactCache
from connectors.hubspot.echo import DealEchoes, own_task_echoes
from connectors.hubspot.fetch import ASSOCIATION_BATCH_SIZE, Fetcher
from connectors.hubspot.mapping import ENGAGEMENT_TYPES, deal_properties
from connectors.hubspot.options import HubSpotOptions
from connectors.hubspot.values import ms
from policies.model import DealField

log = structlog.get_logger(__name__)

Records = dict[str, Mapping[str, Any]]
# what a changed task must show to be recognised as our own write's echo
_ECHO_PROPERTIES = ["hs_object_id", "hs_lastmodifieddate", "hs_task_body", "hs_task_status"]


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
        self.cache: ContactCache | None = None  # the contact cache of the pull in progress (or the last)

    def _properties(self, directory: Directory) -> list[str]:
        stage_ids = [s.id for p in directory.pipelines.values() for s in p.stages]
        names = {f: self._options.property_for(f) for f in DealField}
        return deal_properties(names, stage_ids, self._extra)

    def pull(
        self, directory: Directory, cursor: Cursor | None, known: KnownDeals | None = None
    ) -> Iterator[ChangeBatch]:
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
        yield from self._incremental(directory, state, int(state["hi"]), now_ms, known)

    # -------------------------------------------------------------------------------------------- full

    def _full(
        self, directory: Directory, state: dict[str, str], started: int, from_id: int
    ) -> Iterator[ChangeBatch]:
        properties = self._properties(directory)
        cache = self.cache = ContactCache(self._options.contact_cache_size, ordered=True)
        # A scheduled reconciliation (the worker has a mirror) also reports every archived deal it can see.
        removed = tuple(self._fetcher.archived_deals(None)) if "hi" in state and from_id == 0 else ()
        pending: Records = {}
        last_id = batch_from = from_id
        for record in self._fetcher.search("deals", properties, after_id=from_id):
            pending[str(record["id"])] = record
            last_id = int(record["id"])
            if len(pending) >= self._options.deals_per_batch:
                resume = {**_keep(state), "full_from_id": str(last_id), "full_started": str(started)}
                batch = self._batch(directory, pending, cache, resume, removed)
                self._builder.tasks_read.add_range(batch_from, last_id)  # every live deal in it, tasks too
                pending, removed, batch_from = {}, (), last_id
                yield batch
        done = {**_keep(state), "hi": str(started), "full_at": str(started)}
        batch = self._batch(directory, pending, cache, done, removed)
        self._builder.tasks_read.add_range(batch_from, last_id)
        yield batch
        log.info(
            "hubspot_full_pull_done",
            from_id=from_id,
            last_id=last_id,
            contacts_read=cache.reads,
            contact_cache_size=cache.size,
        )

    # ------------------------------------------------------------------------------------- incremental

    def _incremental(
        self, directory: Directory, state: dict[str, str], hi: int, now_ms: int, known: KnownDeals | None
    ) -> Iterator[ChangeBatch]:
        lo = max(0, hi - int(self._options.search_lookback_seconds * 1000))
        properties = self._properties(directory)
        removed = self._fetcher.archived_deals(lo)
        gone = set(removed)
        via_activity = self._deals_of_changed_activities(lo, now_ms, known) - gone
        searched: Records = {}
        restamped: dict[str, datetime] = {}
        echoes = DealEchoes(known, self._builder.shell, directory) if known is not None else None
        found = self._fetcher.search("deals", properties, modified_from_ms=lo, modified_to_ms=now_ms)
        for chunk in _by_thousand(found):  # only what is pulled is kept: our own writes' echoes are many
            records = {i: r for i, r in chunk.items() if i not in gone}
            if echoes is not None:  # a deal changed through its activities is pulled whatever its record says
                own = {i: r for i, r in records.items() if i not in via_activity}
                kept, stamps = echoes.split(own)
                restamped.update(stamps)
                records = {i: r for i, r in records.items() if i in via_activity or i in kept}
            searched.update(records)
        extra_ids = [d for d in via_activity if d not in searched]
        changed = {**searched, **self._fetcher.batch_read("deals", extra_ids, properties)}
        log.info(
            "hubspot_incremental_window",
            lo=lo,
            hi=now_ms,
            deals=len(changed),
            via_activity=len(extra_ids),
            removed=len(removed),
            restamped=len(restamped),
        )
        cache = self.cache = ContactCache(self._options.contact_cache_size)
        ids = sorted(changed, key=int)
        size = self._options.deals_per_batch
        done = {**_keep(state), "hi": str(now_ms)}
        if not ids:
            yield ChangeBatch(removed_deal_ids=tuple(removed), cursor=done, restamped=restamped)
            return
        for start in range(0, len(ids), size):
            chunk = {i: changed[i] for i in ids[start : start + size]}
            last = start + size >= len(ids)
            batch = self._batch(
                directory, chunk, cache, done if last else dict(state), tuple(removed) if start == 0 else ()
            )
            self._builder.tasks_read.update(chunk)
            # the stamps ride with the cursor that moves past them
            yield dataclasses.replace(batch, restamped=restamped) if last else batch

    def _deals_of_changed_activities(self, lo: int, hi: int, known: KnownDeals | None) -> set[str]:
        """Deals whose activities or contacts changed in [lo, hi] (association changes don't touch deals).

        Our own tasks whose only change is our write (``echo.own_task_echoes``) change nothing.
        """
        deal_ids: set[str] = set()
        contact_ids: set[str] = set()
        for object_type in ENGAGEMENT_TYPES:
            wanted = _ECHO_PROPERTIES if object_type == "tasks" and known is not None else ["hs_object_id"]
            found = self._fetcher.search(object_type, wanted, modified_from_ms=lo, modified_to_ms=hi)
            # a thousand at a time (one association call each): after a big write, the tasks we created
            # are all in the window, and only their ids are worth keeping
            for hits in _by_thousand(found):
                to_deals = self._fetcher.associations(object_type, "deals", list(hits))
                echoes = (
                    own_task_echoes(hits, to_deals, known)
                    if known is not None and object_type == "tasks"
                    else set()
                )
                for task_id, links in to_deals.items():
                    if task_id not in echoes:
                        deal_ids.update(a.to_id for a in links)
                live = [i for i in hits if i not in echoes]
                if not live:
                    continue
                for links in self._fetcher.associations(object_type, "contacts", live).values():
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
        cache: ContactCache,
        cursor: Mapping[str, str],
        removed: tuple[str, ...],
    ) -> ChangeBatch:
        deals, rejected = self._builder.build(records, directory, self._now(), cache)
        return ChangeBatch(
            deals=tuple(deals), removed_deal_ids=removed, cursor=dict(cursor), rejected=tuple(rejected)
        )


def _by_thousand(records: Iterable[Mapping[str, Any]]) -> Iterator[Records]:
    """Search results by id, in chunks of an association call's 1,000 ids."""
    chunk: Records = {}
    for record in records:
        chunk[str(record["id"])] = record
        if len(chunk) >= ASSOCIATION_BATCH_SIZE:
            yield chunk
            chunk = {}
    if chunk:
        yield chunk


def _keep(state: Mapping[str, str]) -> dict[str, str]:
    """The cursor without a finished or superseded full pull's resume point."""
    return {k: v for k, v in state.items() if k not in ("full_from_id", "full_started")}
