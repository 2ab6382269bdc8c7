"""Full and incremental pulls: whole ``Deal`` aggregates in as few API calls as Salesforce allows.

**Full pull** (no cursor, an interrupted full pull, or ``reconciliation_interval`` since the last one): one
query over every opportunity in ``Id`` order with its contact roles, Tasks and Events as relationship
subqueries, paged by ``nextRecordsUrl`` at the largest batch size; beside it one ``EmailMessage`` query in
``RelatedToId`` order, merged page by page (both streams sorted by the same id). Each stream is read up to
5 consecutive pages per Composite call (``SalesforceClient.chained_pages``: chained Query More), one call's
pages in memory per stream. The streams are not mixed in one call: that would save at most one call per
pull (the rounding of the shorter stream) and tie the e-mail reads to the opportunity pages' pace.
A touch logged on a contact counts for every deal of that contact, and that deal may come pages
earlier or later, so no deal is complete before the last page: each page's mapped deals and the touches
logged on contacts go to a ``DealSpill`` (SQLite's private temporary file, ``spill.py``) and are released;
after the last page the deals come back in batches of ``deals_per_batch``, each with the touches on its
contacts. Memory holds one call's pages per stream, one batch and the spill's bounded page cache, whatever
the org's size. All but the last batch mark the full pull as pending (``full_pending``), so a pull
interrupted by a crash or a spent budget starts over (resuming by ``Id > last`` is not safe:
Salesforce-compatible servers need not order and compare ids alike). Removals are implied by absence.

**Incremental pull**: per-object ``SystemModstamp`` cursors, each re-read with ``cursor_overlap`` behind
it (late commits). Tasks, Events, EmailMessages and contact roles changed since their cursors name the
opportunities they belong to, and Tasks and Events logged on a contact name every deal of that contact;
beside them one ``queryAll`` reads the changed opportunity records without child sets (deleted ones show up
with ``IsDeleted``). Our own writes are not news (no self-echo, ``_own_tasks``, ``_echoes``): a Task with
our key that the integration user wrote last (or somebody's Task we closed, as the mirror knows) names no
deal, and an opportunity whose ``LastModifiedDate`` is still the mirror's (only Salesforce moved it, or our
own write, whose stamp the writer read back) is left out. The remaining deals' aggregates are read by
``Id IN (...)``. E-mails of every changed deal are read by ``RelatedToId IN (...)``, the touches on their
contacts by semi-joins on contact roles. The new cursor rides on the last batch only: the worker persists
it once everything before it is stored. Queries that do not depend on each other go up to five pages per
Composite call (``SalesforceClient.query_each``, spare slots chaining further pages of the same queries): the
five change queries; the id chunks of the aggregate look-ups; the e-mails with the contact touches (both
need only the deal ids). So the stages cost one call per 5 pages: changes -> deals of touched contacts ->
aggregates -> e-mails and touches -> the e-mails behind contact e-mail Tasks of other deals.

**Cursor watermarks after a full pull**: the highest ``SystemModstamp`` seen per object, minus the pull's
own duration (the overlap is applied when reading). This stays at or before the server's time when the
pull started without comparing our clock to Salesforce's (only their rates), so changes made while the
pull ran are read again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from connectors.base import ChangeBatch, Cursor, Directory, KnownDeals, RejectedRecord
from connectors.errors import SkipRecord
from connectors.salesforce import soql
from connectors.salesforce.activities import CONTACT_PREFIX, contact_touches
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.mapping import MappingConfig, add_contact_touches, deal_from_records
from connectors.salesforce.spill import DealSpill
from connectors.salesforce.values import children, parse_datetime, written_by
from connectors.values import BadValue
from policies.model import Activity, Deal

log = structlog.get_logger(__name__)

Record = dict[str, Any]
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
CHILD_SETS = ("OpportunityContactRoles", "Tasks", "Events")
# cursor key -> (object, parent id field, parent type filter) for the "which opportunities changed" queries
CHILD_CURSORS: Mapping[str, tuple[str, str, str | None]] = {
    "task": ("Task", "WhatId", "Opportunity"),
    "event": ("Event", "WhatId", "Opportunity"),
    "email": ("EmailMessage", "RelatedToId", "Opportunity"),
    "contact_role": ("OpportunityContactRole", "OpportunityId", None),
}
STAMP_KEYS = ("opportunity", *CHILD_CURSORS)
OPPORTUNITY_PREFIX = "006"
# what the change queries read beyond the parent id: the contact of a touch; who wrote a Task last
_CHANGE_EXTRAS: Mapping[str, tuple[str, ...]] = {
    "Task": ("Id", "WhoId", "LastModifiedById"),
    "Event": ("WhoId",),
}


@dataclass(frozen=True, slots=True)
class PullSettings:
    overlap: timedelta
    reconciliation_interval: timedelta
    ids_per_query: int
    deals_per_batch: int


class _Stamps:
    """The highest SystemModstamp seen per cursor key."""

    def __init__(self) -> None:
        self.seen: dict[str, datetime] = {}

    def note(self, key: str, value: Any) -> None:
        stamp = parse_datetime(value)
        if stamp is not None and (key not in self.seen or stamp > self.seen[key]):
            self.seen[key] = stamp

    def note_aggregate(self, opportunity: Record) -> None:
        self.note("opportunity", opportunity.get("SystemModstamp"))
        for key, relationship in (
            ("task", "Tasks"),
            ("event", "Events"),
            ("contact_role", "OpportunityContactRoles"),
        ):
            for child in (opportunity.get(relationship) or {}).get("records") or []:
                self.note(key, child.get("SystemModstamp"))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _cursor_time(cursor: Cursor, key: str) -> datetime | None:
    value = cursor.get(key)
    return datetime.fromisoformat(value) if value else None


class Puller:
    """Runs full and incremental pulls for one connector."""

    def __init__(
        self,
        client: SalesforceClient,
        shape: soql.OpportunityShape,
        settings: PullSettings,
        *,
        clock: Callable[[], datetime],
        mapping_config: Callable[[Directory], MappingConfig],
    ) -> None:
        self._client = client
        self._shape = shape
        self._settings = settings
        self._clock = clock
        self._mapping_config = mapping_config

    def pull(
        self, directory: Directory, cursor: Cursor | None, known: KnownDeals | None = None
    ) -> Iterator[ChangeBatch]:
        if self.full_due(cursor):
            yield from self._full(directory, cursor or {})
        else:
            assert cursor is not None
            yield from self._incremental(directory, cursor, known)

    def full_due(self, cursor: Cursor | None) -> bool:
        if not cursor or cursor.get("full_pending"):
            return True
        full_at = _cursor_time(cursor, "full_at")
        return full_at is None or self._clock() - full_at >= self._settings.reconciliation_interval

    # -- shared -------------------------------------------------------------------------------------

    def _complete_children(self, opportunity: Record) -> Record:
        """Follow ``nextRecordsUrl`` of child sets Salesforce cut off (rare: at most one page each)."""
        for relationship in CHILD_SETS:
            child_set = opportunity.get(relationship)
            while child_set and not child_set.get("done", True) and child_set.get("nextRecordsUrl"):
                more = self._client.more(str(child_set["nextRecordsUrl"]))
                child_set = {
                    **more,
                    "records": [*child_set.get("records", []), *(more.get("records") or [])],
                }
                opportunity = {**opportunity, relationship: child_set}
        return opportunity

    def _map(
        self,
        opportunities: Sequence[Record],
        emails: Mapping[str, list[Record]],
        directory: Directory,
    ) -> tuple[list[Deal], list[RejectedRecord]]:
        config = self._mapping_config(directory)
        pipeline = directory.pipelines.get(config.pipeline_id)
        now = self._clock()
        deals: list[Deal] = []
        rejected: list[RejectedRecord] = []
        for opportunity in opportunities:
            record_id = str(opportunity.get("Id"))
            try:
                deals.append(
                    deal_from_records(
                        opportunity, emails.get(record_id, []), config=config, pipeline=pipeline, now=now
                    )
                )
            except SkipRecord as exc:
                rejected.append(RejectedRecord.of(exc))
            except Exception as exc:
                rejected.append(
                    RejectedRecord(
                        "Opportunity",
                        record_id,
                        "mapping_failed",
                        None,
                        f"{type(exc).__name__} while mapping",
                    )
                )
        return deals, rejected

    @staticmethod
    def _with_contact_touches(
        deals: Sequence[Deal], index: Mapping[str, Sequence[tuple[str | None, Activity | BadValue]]]
    ) -> tuple[list[Deal], list[RejectedRecord]]:
        """Each deal with the touches on its contacts; a deal with an unreadable contact touch is rejected."""
        complete: list[Deal] = []
        rejected: list[RejectedRecord] = []
        for deal in deals:
            try:
                complete.append(add_contact_touches(deal, index))
            except SkipRecord as exc:
                rejected.append(RejectedRecord.of(exc))
        return complete, rejected

    def _by_chunks(self, build: Callable[[Sequence[str]], str], ids: Sequence[str]) -> Iterator[Record]:
        """The rows of ``build(chunk)`` for every id chunk, the chunks' queries bundled (``query_each``)."""
        queries = [build(chunk) for chunk in soql.chunked(list(ids), self._settings.ids_per_query)]
        for rows in self._client.query_each(queries):
            yield from rows

    def _emails_for(self, ids: Sequence[str], stamps: _Stamps | None = None) -> dict[str, list[Record]]:
        by_deal: dict[str, list[Record]] = {}
        for email in self._by_chunks(soql.emails_for, ids):
            by_deal.setdefault(str(email.get("RelatedToId")), []).append(email)
            if stamps is not None:
                stamps.note("email", email.get("SystemModstamp"))
        return by_deal

    # -- full ---------------------------------------------------------------------------------------

    def _full(self, directory: Directory, previous: Cursor) -> Iterator[ChangeBatch]:
        started = self._clock()
        stamps = _Stamps()
        log.info("salesforce_full_pull", restarted=bool(previous.get("full_pending")))
        pending = {
            **{k: v for k, v in previous.items() if k in STAMP_KEYS or k == "full_at"},
            "full_pending": "1",
        }
        # two chained streams, each up to 5 pages per Composite call and one call's pages in memory
        email_stream = _EmailMerge(self._client.chained_records(soql.emails_all()))
        pages = self._client.chained_pages(self._shape.all_opportunities())
        previous_last: str | None = None
        rejected: list[RejectedRecord] = []
        now = self._clock()
        with DealSpill() as spill:
            for page in pages:
                previous_last = self._spill_page(
                    page, spill, email_stream, previous_last, stamps, rejected, directory, now
                )
            final = self._full_done_cursor(stamps, started)
            log.info("salesforce_full_pull_spilled", deals=spill.deals, spill_bytes=spill.size_bytes)
            groups = max(1, -(-spill.deals // self._settings.deals_per_batch))
            spilled = spill.batches(self._settings.deals_per_batch)
            for number in range(groups):
                group, index = next(spilled, ([], {}))
                complete, bad = self._with_contact_touches(group, index)
                yield ChangeBatch(
                    deals=tuple(complete),
                    cursor=final if number == groups - 1 else pending,
                    rejected=(*rejected, *bad) if number == 0 else tuple(bad),
                )

    def _spill_page(
        self,
        page: Sequence[Record],
        spill: DealSpill,
        email_stream: _EmailMerge,
        previous_last: str | None,
        stamps: _Stamps,
        rejected: list[RejectedRecord],
        directory: Directory,
        now: datetime,
    ) -> str | None:
        """One page of opportunities with their e-mails, mapped and spilled with the touches logged on
        their contacts (nothing of it stays in memory); the page's last id, for the order check."""
        opportunities = [self._complete_children(o) for o in page]
        for opportunity in opportunities:
            stamps.note_aggregate(opportunity)
        ids = [str(o["Id"]) for o in opportunities]
        if ids != sorted(ids) or (previous_last is not None and ids and ids[0] <= previous_last):
            email_stream.ordered = False  # Salesforce's Id order differs from ours: merge impossible
        emails = email_stream.take_through(ids[-1], set(ids)) if email_stream.ordered and ids else {}
        if not email_stream.ordered:
            emails = self._emails_for(ids)
        for rows in emails.values():
            for email in rows:
                stamps.note("email", email.get("SystemModstamp"))
        touches = [
            touch
            for opportunity in opportunities
            for touch in self._own_touches(opportunity, emails.get(str(opportunity["Id"]), []), now)
        ]
        deals, bad = self._map(opportunities, emails, directory)
        spill.add(deals, touches)
        rejected.extend(bad)
        return ids[-1] if ids else previous_last

    def _own_touches(
        self, opportunity: Record, emails: Sequence[Record], now: datetime
    ) -> list[tuple[str, str | None, Activity | BadValue]]:
        """The touches of one opportunity logged on a contact (for that contact's other deals)."""
        mirrors = {str(e["ActivityId"]): e for e in emails if e.get("ActivityId")}
        try:
            rows = [*children(opportunity, "Tasks"), *children(opportunity, "Events")]
        except BadValue:  # malformed child sets: the opportunity's own mapping rejects it
            return []
        return [
            (who, str(opportunity["Id"]), touch)
            for who, _, touch in contact_touches(
                rows, key_field=self._shape.task_key_field, now=now, mirrors=mirrors
            )
        ]

    def _full_done_cursor(self, stamps: _Stamps, started: datetime) -> dict[str, str]:
        elapsed = max(timedelta(0), self._clock() - started)
        floor = min(stamps.seen.values(), default=EPOCH)
        cursor = {"full_at": _iso(started)}
        for key in STAMP_KEYS:
            seen = stamps.seen.get(key, floor)
            cursor[key] = _iso(seen - elapsed)
        return cursor

    # -- incremental --------------------------------------------------------------------------------

    def _since(self, cursor: Cursor, key: str) -> datetime:
        value = _cursor_time(cursor, key) or min(
            (t for k in STAMP_KEYS if (t := _cursor_time(cursor, k)) is not None), default=EPOCH
        )
        return value - self._settings.overlap

    def _incremental(
        self, directory: Directory, cursor: Cursor, known: KnownDeals | None
    ) -> Iterator[ChangeBatch]:
        stamps = _Stamps()
        touched: set[str] = set()
        contacts: set[str] = set()
        live: set[str] = set()
        pull: set[str] = set()
        removed: list[str] = []
        me = self._client.user_id
        key_field = self._shape.task_key_field
        queries = [
            soql.changed_parents(
                object_name,
                parent_field,
                self._since(cursor, key),
                parent_type,
                _CHANGE_EXTRAS.get(object_name, ()) + ((key_field,) if object_name == "Task" else ()),
            )
            for key, (object_name, parent_field, parent_type) in CHILD_CURSORS.items()
        ]
        queries.append(self._shape.changed_records_since(self._since(cursor, "opportunity")))
        children = list(CHILD_CURSORS.items())
        # Page by page as the pages come (independent queries: they share calls). After a cycle of ours the
        # window holds most of the org's Tasks and opportunities; of a row only the ids it names are kept.
        for number, rows in self._client.pages_each(queries, include_deleted=True):
            if number == len(children):
                page: dict[str, Record] = {}
                for opportunity in rows:
                    stamps.note("opportunity", opportunity.get("SystemModstamp"))
                    record_id = str(opportunity["Id"])
                    if opportunity.get("IsDeleted"):
                        removed.append(record_id)
                    else:
                        page[record_id] = opportunity
                live.update(page)
                # judged one by one, so judging the deals changed via activities too changes nothing
                pull |= self._echoes(page, known, directory) if known is not None else set(page)
                continue
            key, (object_name, parent_field, _) = children[number]
            echoes = self._own_tasks(rows, known, me) if object_name == "Task" else set()
            for row in rows:
                stamps.note(key, row.get("SystemModstamp"))
                if str(row.get("Id")) in echoes:
                    continue  # last written by us, and the mirror holds that write: it changes nothing
                parent = row.get(parent_field)
                if parent and str(parent).startswith(OPPORTUNITY_PREFIX):
                    touched.add(str(parent))
                who = row.get("WhoId")
                if who and str(who).startswith(CONTACT_PREFIX):
                    contacts.add(str(who))  # a touch on a contact changes every deal of that contact
        for row in self._by_chunks(soql.deals_of_contacts, sorted(contacts)):
            touched.add(str(row["OpportunityId"]))
        changed = self._aggregates(sorted((pull | touched) - set(removed)))
        new_cursor = {k: v for k, v in cursor.items() if k == "full_at"}
        for key in STAMP_KEYS:
            old = _cursor_time(cursor, key)
            best = max((t for t in (old, stamps.seen.get(key)) if t is not None), default=None)
            if best is not None:
                new_cursor[key] = _iso(best)
        ids = sorted(changed)
        log.info(
            "salesforce_incremental_pull",
            changed=len(ids),
            removed=len(removed),
            left_out=len(live - touched) - len(pull - touched),
        )
        emails, index = self._emails_and_contact_touches(ids)
        deals, rejected = self._map([changed[i] for i in ids], emails, directory)
        complete, bad = self._with_contact_touches(deals, index)
        rejected.extend(bad)
        groups = soql.chunked(complete, self._settings.deals_per_batch) or [[]]
        for number, group in enumerate(groups):
            last = number == len(groups) - 1
            yield ChangeBatch(
                deals=tuple(group),
                removed_deal_ids=tuple(removed) if last else (),
                cursor=new_cursor if last else dict(cursor),
                rejected=tuple(rejected) if number == 0 else (),
            )

    def _own_tasks(self, rows: Sequence[Record], known: KnownDeals | None, me: str | None) -> set[str]:
        """The changed Tasks whose last write is ours and already in the mirror: our own Tasks (our key),
        and somebody's Tasks we closed (``nurture.close_rep_tasks``) that the mirror holds as closed."""
        key_field = self._shape.task_key_field
        mine = [r for r in rows if written_by(r, me)]
        echoes = {str(r["Id"]) for r in mine if r.get(key_field)}
        others = [r for r in mine if not r.get(key_field) and r.get("WhatId")]
        if known is None or not others:
            return echoes
        mirrored = known.deals(sorted({str(r["WhatId"]) for r in others}))
        for row in others:
            deal = mirrored.get(str(row["WhatId"]))
            if deal is not None and any(t.id == str(row["Id"]) and not t.is_open for t in deal.rep_tasks):
                echoes.add(str(row["Id"]))
        return echoes

    def _echoes(self, records: Mapping[str, Record], known: KnownDeals, directory: Directory) -> set[str]:
        """Which changed opportunities to pull (the others are our own writes' echo or not wanted).

        ``LastModifiedDate`` moves on writes of users (ours included) and ``SystemModstamp`` also on
        Salesforce's own recalculations (``LastActivityDate`` after a Task, say; the Task itself is read
        on its own). The mirror holds, for an opportunity we wrote, the ``LastModifiedDate`` read back right
        after our write (``write.py``). So an opportunity is left out when its ``LastModifiedDate`` is the
        mirror's stamp (nobody but Salesforce moved it since we last read or wrote it), or when the mirror
        lacks it and would not want it (closed, not in nurture). Nothing is restamped here: a stamp only
        Salesforce moved is not the one conditional writes compare (``LastModifiedDate`` is).
        """
        mirrored = known.modified_at(list(records))
        config = self._mapping_config(directory)
        pipeline = directory.pipelines.get(config.pipeline_id)
        now = self._clock()
        pull: set[str] = set()
        for record_id, record in records.items():
            held = mirrored.get(record_id)
            if held is None:
                try:
                    shell = deal_from_records(record, [], config=config, pipeline=pipeline, now=now)
                except Exception:  # any mapping failure: pulled, mapped again and rejected with its reason
                    pull.add(record_id)
                    continue
                if known.wanted(shell):
                    pull.add(record_id)
            elif parse_datetime(record.get("LastModifiedDate")) != held:
                pull.add(record_id)
        return pull

    def _aggregates(self, ids: Sequence[str]) -> dict[str, Record]:
        """Whole aggregates of ``ids`` (live ones), read by ``Id IN (...)`` chunks bundled per call."""
        changed: dict[str, Record] = {}
        for opportunity in self._by_chunks(self._shape.by_ids, ids):
            changed.setdefault(str(opportunity["Id"]), self._complete_children(opportunity))
        return changed

    def _emails_and_contact_touches(
        self, ids: Sequence[str]
    ) -> tuple[dict[str, list[Record]], dict[str, list[tuple[str | None, Activity | BadValue]]]]:
        """The e-mails of these deals and the touches logged on their contacts, by contact id.

        Both only need the deal ids, so their id-chunked queries share Composite calls; the e-mails
        behind contact e-mail Tasks logged on other deals (for their direction) follow, once those Tasks
        are known.
        """
        if not ids:
            return {}, {}
        chunks = soql.chunked(list(ids), self._settings.ids_per_query)
        email_queries = [soql.emails_for(chunk) for chunk in chunks]
        touch_queries: list[str] = []
        for chunk in chunks:
            touch_queries += [soql.contact_tasks(self._shape, chunk), soql.contact_events(chunk)]
        results = list(self._client.query_each([*email_queries, *touch_queries]))
        emails: dict[str, list[Record]] = {}
        for email in (e for found in results[: len(email_queries)] for e in found):
            emails.setdefault(str(email.get("RelatedToId")), []).append(email)
        rows = [r for found in results[len(email_queries) :] for r in found]
        mirrors = {str(e["ActivityId"]): e for rows_ in emails.values() for e in rows_ if e.get("ActivityId")}
        unknown = sorted(
            str(r["Id"])
            for r in rows
            if str(r.get("TaskSubtype") or "") == "Email" and str(r["Id"]) not in mirrors
        )
        for email in self._by_chunks(soql.emails_by_activity, unknown):
            mirrors[str(email["ActivityId"])] = email
        index: dict[str, list[tuple[str | None, Activity | BadValue]]] = {}
        now = self._clock()
        for who, what, touch in contact_touches(
            rows, key_field=self._shape.task_key_field, now=now, mirrors=mirrors
        ):
            index.setdefault(who, []).append((what, touch))
        return emails, index


class _EmailMerge:
    """E-mails in ``RelatedToId`` order, handed out page by page to opportunities in ``Id`` order.

    If Salesforce's order ever disagrees with Python's string order (checked on every row), ``ordered``
    turns false and the caller falls back to ``RelatedToId IN (...)`` queries for the remaining pages.
    """

    def __init__(self, rows: Iterator[Record]) -> None:
        self._rows = rows
        self._pending: Record | None = None
        self._last: str | None = None
        self.ordered = True

    def _next(self) -> Record | None:
        if self._pending is None:
            self._pending = next(self._rows, None)
        return self._pending

    def take_through(self, last_id: str, ids: set[str]) -> dict[str, list[Record]]:
        taken: dict[str, list[Record]] = {}
        while (row := self._next()) is not None:
            related = str(row.get("RelatedToId") or "")
            if self._last is not None and related < self._last:
                self.ordered = False
                log.warning("salesforce_email_order_mismatch")
                break
            if related > last_id:
                break
            self._last = related
            self._pending = None
            if related in ids:
                taken.setdefault(related, []).append(row)
        return taken
