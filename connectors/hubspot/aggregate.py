"""Whole deal aggregates from a set of deal records: contacts with roles, activities, our tasks.

For a chunk of deals the calls are, whatever changed: deal -> contacts associations (with labels), deal ->
each engagement type, the contacts by batch read, contact -> each engagement type (touches logged on a
contact count for every deal the contact is on), then every engagement by batch read. So the cost of a
chunk grows with the deals in it and their history, never with the portal.

Contacts, their engagement associations and those engagements are kept in a bounded cache for the
duration of one pull (``contact_cache.ContactCache``), so a contact on many deals is read once while it
stays in the cache, not once per chunk; what a chunk reads beyond that is let go when its aggregates are
built.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import Directory, RejectedRecord
from connectors.errors import SkipRecord
from connectors.hubspot.contact_cache import ContactCache, ContactEntry, Pair
from connectors.hubspot.fetch import Associated, Fetcher
from connectors.hubspot.mapping import (
    CONTACT_PROPERTIES,
    ENGAGEMENT_PROPERTIES,
    ENGAGEMENT_TYPES,
    activity_from_hubspot,
    auto_task_from_hubspot,
    contact_from_hubspot,
    deal_from_hubspot,
    rep_task_from_hubspot,
)
from connectors.hubspot.options import HubSpotOptions
from connectors.hubspot.values import parse_datetime
from connectors.values import BadValue
from policies.model import Activity, AutoTask, Contact, Deal, DealField, RepTask


@dataclass(frozen=True, slots=True)
class KnownTask:
    """One of our tasks as last read: enough to close or update it without reading it again."""

    task_id: str
    deal_id: str
    key: str
    rule_id: str
    body: str
    is_open: bool


_UNDATED = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Engagement:
    """One engagement, already mapped (small enough to keep for a whole pull).

    ``problem`` is set when the engagement could not be mapped (a timestamp out of bounds, say): every deal
    it belongs to, directly or through a contact, is then rejected with it rather than judged without it (a
    lost reply could close a live deal).
    """

    activity: Activity | None  # without contact ids: those depend on the deal it is seen from
    task: AutoTask | None  # one of ours
    body: str  # our task's body (kept to close or update it); "" otherwise
    closed_at: datetime  # when our task was closed (or last touched); for every other engagement: never
    problem: BadValue | None = None
    rep_task: RepTask | None = None  # somebody's open follow-up task

    @classmethod
    def of(cls, object_type: str, record: Mapping[str, Any]) -> Engagement:
        try:
            task = auto_task_from_hubspot(record) if object_type == "tasks" else None
            body = str((record.get("properties") or {}).get("hs_task_body") or "") if task else ""
            rep = rep_task_from_hubspot(record) if object_type == "tasks" and task is None else None
            activity = activity_from_hubspot(object_type, record)
            closed_at = _closed_at(record) if task is not None else _UNDATED  # read for our tasks only
            return cls(activity, task, body, closed_at, rep_task=rep)
        except BadValue as bad:
            return cls(None, None, "", _UNDATED, bad)


class TasksRead:
    """The deals whose tasks this process has read: the id ranges a full pull walked, and single deals.

    A full pull reads every live deal of an id range, in order, with its tasks, so all of them take one
    range (memory does not grow with the deals pulled). A deal in such a range that the pull did not see
    did not exist (or was archived) when it passed: our tasks on it can only be this process's own
    creates, which ``AggregateBuilder.known_tasks`` holds. Incremental pulls and ``remember_tasks`` add
    single deals (as many as changed, or as are written to).
    """

    def __init__(self) -> None:
        self._ranges: list[tuple[int, int]] = []  # inclusive, sorted, disjoint and not touching
        self._ids: set[str] = set()

    def add_range(self, after: int, through: int) -> None:
        """Every deal with an id in (``after``, ``through``]."""
        lo, hi = after + 1, through
        if lo > hi:
            return
        kept: list[tuple[int, int]] = []
        for a, b in self._ranges:
            if b + 1 < lo or a > hi + 1:
                kept.append((a, b))
            else:
                lo, hi = min(lo, a), max(hi, b)
        kept.append((lo, hi))
        self._ranges = sorted(kept)

    def update(self, deal_ids: Iterable[str]) -> None:
        self._ids.update(deal_ids)

    def __contains__(self, deal_id: object) -> bool:
        if deal_id in self._ids:
            return True
        if not isinstance(deal_id, str) or not deal_id.isdigit():
            return False
        number = int(deal_id)
        return any(a <= number <= b for a, b in self._ranges)

    @property
    def size(self) -> int:
        """Ranges plus single deals held: what this costs in memory."""
        return len(self._ranges) + len(self._ids)


# contacts read for a chunk, to be cached once their engagements are read:
# id -> (slim record, engagement ids, the id of the last deal the contact is on in an ordered pull)
Pending = dict[str, tuple[Mapping[str, Any] | None, tuple[Pair, ...], int | None]]


class AggregateBuilder:
    def __init__(
        self,
        fetcher: Fetcher,
        options: HubSpotOptions,
        *,
        extra_fields: Sequence[str] = (),
        field_types: Mapping[str, str] | None = None,
    ) -> None:
        self._fetcher = fetcher
        self._options = options
        self._extra = tuple(extra_fields)
        self.field_types = dict(field_types or {})  # extra deal fields' HubSpot types
        self.known_tasks: dict[str, KnownTask] = {}  # key -> task, from every pull of this process
        self.tasks_read = TasksRead()  # the deals whose tasks this process has read

    def _contacts(self, ids: Sequence[str], cache: ContactCache) -> tuple[dict[str, ContactEntry], Pending]:
        """The chunk's contacts: from the cache, or read (record and engagement ids, engagements to come)."""
        chunk: dict[str, ContactEntry] = {}
        missing: list[str] = []
        for contact_id in dict.fromkeys(ids):
            entry = cache.get(contact_id)
            if entry is None:
                missing.append(contact_id)
            else:
                chunk[contact_id] = entry
        if not missing:
            return chunk, {}
        found = self._fetcher.batch_read("contacts", missing, CONTACT_PROPERTIES)
        per_type = {t: self._fetcher.associations("contacts", t, missing) for t in ENGAGEMENT_TYPES}
        # in an ordered pull, how long each contact is needed: until the last of its deals
        deals_of = self._fetcher.associations("contacts", "deals", missing) if cache.ordered else {}
        cache.reads += len(missing)
        pending: Pending = {}
        for contact_id in missing:
            record = found.get(contact_id)
            pairs = tuple((t, a.to_id) for t in ENGAGEMENT_TYPES for a in per_type[t].get(contact_id, []))
            until = max((_numeric(a.to_id)[0] for a in deals_of.get(contact_id, [])), default=None)
            pending[contact_id] = (_slim(record) if record is not None else None, pairs, until)
            chunk[contact_id] = ContactEntry(pending[contact_id][0], pairs)
        return chunk, pending

    def build(
        self,
        deal_records: Mapping[str, Mapping[str, Any]],
        directory: Directory,
        now: datetime,
        cache: ContactCache,
    ) -> tuple[list[Deal], list[RejectedRecord]]:
        """Aggregates for ``deal_records`` (deal id -> search or batch-read record)."""
        deal_ids = list(deal_records)
        if not deal_ids:
            return [], []
        deal_contacts = self._fetcher.associations("deals", "contacts", deal_ids)
        deal_engagements = {t: self._fetcher.associations("deals", t, deal_ids) for t in ENGAGEMENT_TYPES}
        contacts, pending = self._contacts(
            [a.to_id for links in deal_contacts.values() for a in links], cache
        )

        wanted: set[Pair] = set()
        for deal_id in deal_ids:
            for t in ENGAGEMENT_TYPES:
                wanted.update((t, a.to_id) for a in deal_engagements[t].get(deal_id, []))
            for link in deal_contacts.get(deal_id, []):
                entry = contacts.get(link.to_id)
                if entry is not None:
                    wanted.update(entry.engagements)
        engagements: dict[Pair, Engagement] = {}
        missing: dict[str, list[str]] = {t: [] for t in ENGAGEMENT_TYPES}
        for pair in wanted:
            item = cache.engagement(pair)
            if item is None:
                missing[pair[0]].append(pair[1])
            else:
                engagements[pair] = item
        for t in ENGAGEMENT_TYPES:
            for engagement_id, found in self._fetcher.batch_read(
                t, sorted(missing[t], key=_numeric), ENGAGEMENT_PROPERTIES[t]
            ).items():
                engagements[(t, engagement_id)] = Engagement.of(t, found)
        position = max(_numeric(d)[0] for d in deal_ids)  # an ordered pull has come this far
        for contact_id, (record, pairs, until) in pending.items():
            contacts[contact_id] = cache.put(
                contact_id, record, pairs, engagements, until=until, position=position
            )
        cache.passed(position)

        deals: list[Deal] = []
        rejected: list[RejectedRecord] = []
        horizon = now - timedelta(days=self._options.activity_lookback_days)
        closed_horizon = now - timedelta(days=self._options.closed_task_lookback_days)
        for deal_id in deal_ids:
            try:
                deal_contacts_, activities, tasks, rep_tasks = self._parts(
                    deal_id, deal_contacts, deal_engagements, engagements, contacts, horizon, closed_horizon
                )
                deals.append(
                    deal_from_hubspot(
                        deal_records[deal_id],
                        directory.pipelines,
                        self._field_names,
                        extra_fields=self._extra,
                        field_types=self.field_types,
                        contacts=deal_contacts_,
                        activities=activities,
                        auto_tasks=tasks,
                        rep_tasks=rep_tasks,
                    )
                )
            except BadValue as bad:  # in one of its engagements or contacts
                rejected.append(
                    RejectedRecord("deal", deal_id, bad.reason, bad.field, f"deal {deal_id}: {bad}")
                )
            except SkipRecord as exc:
                rejected.append(RejectedRecord.of(exc))
            except Exception as exc:
                rejected.append(
                    RejectedRecord(
                        "deal", deal_id, "mapping_failed", None, f"{type(exc).__name__} while mapping"
                    )
                )
        return deals, rejected

    def shell(self, record: Mapping[str, Any], directory: Directory) -> Deal:
        """A deal record mapped without contacts, activities or tasks (``SkipRecord`` as ``build`` would)."""
        return deal_from_hubspot(
            record,
            directory.pipelines,
            self._field_names,
            extra_fields=self._extra,
            field_types=self.field_types,
        )

    @property
    def _field_names(self) -> Mapping[DealField, str]:
        return {f: self._options.property_for(f) for f in DealField}

    def _parts(
        self,
        deal_id: str,
        deal_contacts: Mapping[str, list[Associated]],
        deal_engagements: Mapping[str, Mapping[str, list[Associated]]],
        engagements: Mapping[Pair, Engagement],
        chunk_contacts: Mapping[str, ContactEntry],
        horizon: datetime,
        closed_horizon: datetime,
    ) -> tuple[list[Contact], list[Activity], list[AutoTask], list[RepTask]]:
        contacts: list[Contact] = []
        touched_by: dict[Pair, set[str]] = {}  # (type, engagement id) -> this deal's contacts
        for link in deal_contacts.get(deal_id, []):
            entry = chunk_contacts.get(link.to_id)
            record = entry.record if entry is not None else None
            if entry is None or record is None:
                continue
            contacts.append(
                contact_from_hubspot(
                    record, link.labels, self._options.role_labels, self._options.primary_contact_label
                )
            )
            for pair in entry.engagements:
                touched_by.setdefault(pair, set()).add(link.to_id)
        on_deal = {(t, a.to_id) for t in ENGAGEMENT_TYPES for a in deal_engagements[t].get(deal_id, [])}

        activities: list[Activity] = []
        tasks: list[AutoTask] = []
        rep_tasks: list[RepTask] = []
        for pair in sorted(on_deal | set(touched_by), key=lambda p: (p[0], _numeric(p[1]))):
            item = engagements.get(pair)
            if item is None:
                continue
            if item.problem is not None:
                raise item.problem
            if item.rep_task is not None and pair in on_deal:
                rep_tasks.append(item.rep_task)
            if item.task is not None and pair in on_deal:
                self._remember_task(item.task, item.body, deal_id)
                if item.task.is_open or item.closed_at >= closed_horizon:
                    tasks.append(item.task)
            activity = item.activity
            if activity is not None and activity.occurred_at >= horizon:
                contact_ids = touched_by.get(pair)
                activities.append(seen_with(activity, contact_ids) if contact_ids else activity)
        return contacts, activities, tasks, rep_tasks

    def without_known_tasks(self, deal_ids: Iterable[str]) -> list[str]:
        """Those of ``deal_ids`` whose tasks this process has not read (in id order)."""
        return sorted((d for d in set(deal_ids) if d not in self.tasks_read), key=_numeric)

    def remember_tasks(self, deal_ids: Sequence[str]) -> None:
        """Read the tasks on ``deal_ids`` afresh (after a failed create, or for deals not pulled yet)."""
        links = self._fetcher.associations("deals", "tasks", deal_ids)
        task_ids = {a.to_id: deal_id for deal_id, items in links.items() for a in items}
        records = self._fetcher.batch_read("tasks", list(task_ids), ENGAGEMENT_PROPERTIES["tasks"])
        for task_id, record in records.items():
            item = Engagement.of("tasks", record)
            if item.task is not None:
                self._remember_task(item.task, item.body, task_ids[task_id])
        self.tasks_read.update(deal_ids)

    def _remember_task(self, task: AutoTask, body: str, deal_id: str) -> None:
        self.known_tasks[task.key] = KnownTask(task.id, deal_id, task.key, task.rule_id, body, task.is_open)


def seen_with(activity: Activity, contact_ids: set[str]) -> Activity:
    """``activity`` as one deal sees it: with the deal's contacts it touched (a hot path: every activity
    of every deal pulled; ``dataclasses.replace`` costs three times as much)."""
    return Activity(
        activity.id,
        activity.kind,
        activity.direction,
        activity.occurred_at,
        activity.outcome,
        tuple(sorted(contact_ids)) if len(contact_ids) > 1 else tuple(contact_ids),
        activity.created_by_followup,
    )


def _slim(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """A contact record with what mapping reads of it (its id and properties): less to keep in the cache."""
    props = record.get("properties")
    if not isinstance(props, Mapping):
        props = {}
    return {"id": record["id"], "properties": {k: props.get(k) for k in CONTACT_PROPERTIES if k in props}}


def _closed_at(record: Mapping[str, Any]) -> datetime:
    props = record.get("properties")
    if not isinstance(props, Mapping):
        props = {}
    moment = (
        parse_datetime(props.get("hs_task_completion_date"))
        or parse_datetime(props.get("hs_lastmodifieddate"))
        or parse_datetime(props.get("hs_timestamp"))
    )
    return moment if moment is not None else _UNDATED  # undated: keep it


def _numeric(record_id: str) -> tuple[int, str]:
    return (int(record_id), "") if record_id.isdigit() else (0, record_id)
