"""Whole deal aggregates from a set of deal records: contacts with roles, activities, our tasks.

For a chunk of deals the calls are, whatever changed: deal -> contacts associations (with labels), deal ->
each engagement type, the contacts by batch read, contact -> each engagement type (touches logged on a
contact count for every deal the contact is on), then every engagement by batch read. So the cost of a
chunk grows with the deals in it and their history, never with the portal.

Contacts and their engagement associations are kept for the duration of one pull (``PullCache``), so a
contact on many deals is read once per pull, not once per chunk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import Directory, RejectedRecord
from connectors.errors import SkipRecord
from connectors.hubspot.fetch import Associated, Fetcher
from connectors.hubspot.mapping import (
    CONTACT_PROPERTIES,
    ENGAGEMENT_PROPERTIES,
    ENGAGEMENT_TYPES,
    activity_from_hubspot,
    auto_task_from_hubspot,
    contact_from_hubspot,
    deal_from_hubspot,
    parse_datetime,
    parse_task_key,
)
from connectors.hubspot.options import HubSpotOptions
from policies.model import Activity, AutoTask, Contact, Deal, DealField


@dataclass(frozen=True, slots=True)
class KnownTask:
    """One of our tasks as last read: enough to close or update it without reading it again."""

    task_id: str
    deal_id: str
    key: str
    rule_id: str
    body: str
    is_open: bool


@dataclass
class PullCache:
    """What one pull has read about contacts, shared by its chunks."""

    contacts: dict[str, Mapping[str, Any] | None] = field(default_factory=dict)
    contact_engagements: dict[str, dict[str, list[str]]] = field(
        default_factory=dict
    )  # contact -> type -> ids


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
        self.deals_with_known_tasks: set[str] = set()  # deals whose tasks this process has read

    def _contacts(self, ids: Sequence[str], cache: PullCache) -> None:
        missing = [i for i in dict.fromkeys(ids) if i not in cache.contacts]
        if not missing:
            return
        found = self._fetcher.batch_read("contacts", missing, CONTACT_PROPERTIES)
        per_type = {t: self._fetcher.associations("contacts", t, missing) for t in ENGAGEMENT_TYPES}
        for contact_id in missing:
            cache.contacts[contact_id] = found.get(contact_id)
            cache.contact_engagements[contact_id] = {
                t: [a.to_id for a in per_type[t].get(contact_id, [])] for t in ENGAGEMENT_TYPES
            }

    def build(
        self,
        deal_records: Mapping[str, Mapping[str, Any]],
        directory: Directory,
        now: datetime,
        cache: PullCache,
    ) -> tuple[list[Deal], list[RejectedRecord]]:
        """Aggregates for ``deal_records`` (deal id -> search or batch-read record)."""
        deal_ids = list(deal_records)
        if not deal_ids:
            return [], []
        deal_contacts = self._fetcher.associations("deals", "contacts", deal_ids)
        deal_engagements = {t: self._fetcher.associations("deals", t, deal_ids) for t in ENGAGEMENT_TYPES}
        self._contacts([a.to_id for links in deal_contacts.values() for a in links], cache)

        wanted: dict[str, set[str]] = {t: set() for t in ENGAGEMENT_TYPES}
        for deal_id in deal_ids:
            for t in ENGAGEMENT_TYPES:
                wanted[t].update(a.to_id for a in deal_engagements[t].get(deal_id, []))
            for link in deal_contacts.get(deal_id, []):
                for t, ids in cache.contact_engagements.get(link.to_id, {}).items():
                    wanted[t].update(ids)
        engagements = {
            t: self._fetcher.batch_read(t, sorted(wanted[t], key=_numeric), ENGAGEMENT_PROPERTIES[t])
            for t in ENGAGEMENT_TYPES
        }

        deals: list[Deal] = []
        rejected: list[RejectedRecord] = []
        horizon = now - timedelta(days=self._options.activity_lookback_days)
        closed_horizon = now - timedelta(days=self._options.closed_task_lookback_days)
        self.deals_with_known_tasks.update(deal_ids)
        for deal_id in deal_ids:
            contacts, activities, tasks = self._parts(
                deal_id, deal_contacts, deal_engagements, engagements, cache, horizon, closed_horizon
            )
            try:
                deals.append(
                    deal_from_hubspot(
                        deal_records[deal_id],
                        directory.pipelines,
                        self._field_names,
                        extra_fields=self._extra,
                        field_types=self.field_types,
                        contacts=contacts,
                        activities=activities,
                        auto_tasks=tasks,
                    )
                )
            except SkipRecord as exc:
                rejected.append(RejectedRecord("deal", deal_id, str(exc)))
        return deals, rejected

    @property
    def _field_names(self) -> Mapping[DealField, str]:
        return {f: self._options.property_for(f) for f in DealField}

    def _parts(
        self,
        deal_id: str,
        deal_contacts: Mapping[str, list[Associated]],
        deal_engagements: Mapping[str, Mapping[str, list[Associated]]],
        engagements: Mapping[str, Mapping[str, Mapping[str, Any]]],
        cache: PullCache,
        horizon: datetime,
        closed_horizon: datetime,
    ) -> tuple[list[Contact], list[Activity], list[AutoTask]]:
        contacts: list[Contact] = []
        touched_by: dict[tuple[str, str], set[str]] = {}  # (type, engagement id) -> this deal's contacts
        for link in deal_contacts.get(deal_id, []):
            record = cache.contacts.get(link.to_id)
            if record is None:
                continue
            contacts.append(
                contact_from_hubspot(
                    record, link.labels, self._options.role_labels, self._options.primary_contact_label
                )
            )
            for t, ids in cache.contact_engagements.get(link.to_id, {}).items():
                for engagement_id in ids:
                    touched_by.setdefault((t, engagement_id), set()).add(link.to_id)
        on_deal = {(t, a.to_id) for t in ENGAGEMENT_TYPES for a in deal_engagements[t].get(deal_id, [])}

        activities: list[Activity] = []
        tasks: list[AutoTask] = []
        for t, engagement_id in sorted(on_deal | set(touched_by), key=lambda p: (p[0], _numeric(p[1]))):
            record = engagements[t].get(engagement_id)
            if record is None:
                continue
            if t == "tasks" and (t, engagement_id) in on_deal:
                task = auto_task_from_hubspot(record)
                if task is not None:
                    self._remember(record, deal_id)
                    if task.is_open or _closed_at(record) >= closed_horizon:
                        tasks.append(task)
            activity = activity_from_hubspot(t, record, touched_by.get((t, engagement_id), ()))
            if activity is not None and activity.occurred_at >= horizon:
                activities.append(activity)
        return contacts, activities, tasks

    def remember_tasks(self, deal_ids: Sequence[str]) -> None:
        """Read the tasks on ``deal_ids`` afresh (after a failed create, or for deals not pulled yet)."""
        links = self._fetcher.associations("deals", "tasks", deal_ids)
        task_ids = {a.to_id: deal_id for deal_id, items in links.items() for a in items}
        records = self._fetcher.batch_read("tasks", list(task_ids), ENGAGEMENT_PROPERTIES["tasks"])
        for task_id, record in records.items():
            self._remember(record, task_ids[task_id])
        self.deals_with_known_tasks.update(deal_ids)

    def _remember(self, record: Mapping[str, Any], deal_id: str) -> None:
        props = record.get("properties") or {}
        body = str(props.get("hs_task_body") or "")
        found = parse_task_key(body)
        if found is None:
            return
        self.known_tasks[found[0]] = KnownTask(
            task_id=str(record["id"]),
            deal_id=deal_id,
            key=found[0],
            rule_id=found[1],
            body=body,
            is_open=str(props.get("hs_task_status") or "").upper() != "COMPLETED",
        )


def _closed_at(record: Mapping[str, Any]) -> datetime:
    props = record.get("properties") or {}
    moment = (
        parse_datetime(props.get("hs_task_completion_date"))
        or parse_datetime(props.get("hs_lastmodifieddate"))
        or parse_datetime(props.get("hs_timestamp"))
    )
    return moment if moment is not None else datetime.max.replace(tzinfo=UTC)  # undated: keep it


def _numeric(record_id: str) -> tuple[int, str]:
    return (int(record_id), "") if record_id.isdigit() else (0, record_id)
