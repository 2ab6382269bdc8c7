"""Fill a ``HubSpotStore`` from a CRM-neutral ``Dataset``: records, associations, pipelines, owners.

Fast by construction: one pass over the activities computes the deals' engagement roll-ups and groups
engagements by type, records keep their dataset object and render properties on first use, and association
edges are built per pair on first access. 100,000 deals with a million activities load in seconds.
"""

from __future__ import annotations

import gc
import zlib
from collections.abc import Iterable
from datetime import timedelta

from crm_sandbox.dataset import ActivityKind, Dataset, GenActivity, GenDeal
from crm_sandbox.hubspot.associations import EdgeBuilder
from crm_sandbox.hubspot.catalog import ASSOCIATION_LABEL_TYPES
from crm_sandbox.hubspot.properties import FOLLOWUP_GROUP, PropertyGroup
from crm_sandbox.hubspot.properties_builtin import followup_properties, stage_entry_property
from crm_sandbox.hubspot.records import Record
from crm_sandbox.hubspot.render import (
    KIND_TO_TYPE,
    iso_ms,
    ms_of,
    render_activity,
    render_company,
    render_contact,
    render_deal,
)
from crm_sandbox.hubspot.store import HubSpotStore, Owner, Pipeline, Stage

__all__ = ["load_dataset"]

_ROLE_TYPE = {name: forward for name, _label, forward, _inverse in ASSOCIATION_LABEL_TYPES}
_CONTACTED = frozenset({ActivityKind.CALL, ActivityKind.EMAIL, ActivityKind.MEETING})
_BOOKED = frozenset({"scheduled", "rescheduled"})
_FREEZE_FROM = 100_000


class _Rollup:
    """Running engagement roll-ups of one deal (see ``render.deal_rollups`` for the semantics)."""

    __slots__ = ("contacted", "contacted_at", "next_at", "total", "updated_at")

    def __init__(self) -> None:
        self.contacted_at = 0  # 0 = none yet (all stamps are after 1970)
        self.updated_at = 0
        self.next_at = 0
        self.contacted = 0
        self.total = 0

    def values(self) -> dict[str, str]:
        values = {"num_contacted_notes": str(self.contacted), "num_notes": str(self.total)}
        if self.contacted_at:
            values["notes_last_contacted"] = iso_ms(self.contacted_at)
        if self.updated_at:
            values["notes_last_updated"] = iso_ms(self.updated_at)
        if self.next_at:
            values["notes_next_activity_date"] = iso_ms(self.next_at)
        return values


def _activity_records(
    activities: Iterable[GenActivity], now_ms: int
) -> tuple[dict[str, list[GenActivity]], dict[str, list[Record]], dict[int, _Rollup]]:
    """One pass: activities and their records grouped by object type, and each deal's roll-ups.

    Written as one flat loop with locals because it runs a million times when loading a large sandbox.
    """
    by_type: dict[str, list[GenActivity]] = {kind: [] for kind in KIND_TO_TYPE.values()}
    records: dict[str, list[Record]] = {kind: [] for kind in KIND_TO_TYPE.values()}
    rollups: dict[int, _Rollup] = {}
    kind_of = KIND_TO_TYPE
    task, meeting, contacted_kinds, booked = ActivityKind.TASK, ActivityKind.MEETING, _CONTACTED, _BOOKED
    for a in activities:
        kind = a.kind
        stamp = ms_of(a.occurred_at)
        created = ms_of(a.created_at) if a.created_at is not None else stamp
        modified = ms_of(a.modified_at) if a.modified_at is not None else created
        plural = kind_of[kind]
        by_type[plural].append(a)
        records[plural].append(Record(a.id, created, modified if modified > created else created, None, a))
        rollup = rollups.get(a.deal_id)
        if rollup is None:
            rollup = rollups[a.deal_id] = _Rollup()
        rollup.total += 1
        is_open_task = kind is task and a.outcome != "completed"
        upcoming = stamp >= now_ms and (is_open_task or (kind is meeting and a.outcome in booked))
        if upcoming and (not rollup.next_at or stamp < rollup.next_at):
            rollup.next_at = stamp
        if stamp <= now_ms and not is_open_task:
            if stamp > rollup.updated_at:
                rollup.updated_at = stamp
            if kind in contacted_kinds:
                rollup.contacted += 1
                if stamp > rollup.contacted_at:
                    rollup.contacted_at = stamp
    return by_type, records, rollups


def load_dataset(store: HubSpotStore, dataset: Dataset) -> None:
    """Replace the store's contents with ``dataset`` rendered as a HubSpot portal.

    The cyclic garbage collector is paused while millions of small objects are made (it would otherwise
    rescan them all, again and again), and what was loaded is then frozen out of later collections, so a
    large portal neither loads slowly nor stalls requests with long collections (only for large datasets: the
    freeze is process-wide).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        _load(store, dataset)
    finally:
        if len(dataset.activities) + len(dataset.deals) >= _FREEZE_FROM:
            gc.freeze()
        if was_enabled:
            gc.enable()


def _load(store: HubSpotStore, dataset: Dataset) -> None:
    bare = store.settings.bare
    now_ms = ms_of(dataset.now)
    _load_schema(store, dataset, bare)
    stages = {s.id: s for p in dataset.pipelines for s in p.stages}
    by_type, activity_records, rollups = _activity_records(dataset.activities, now_ms)
    empty_rollups = _Rollup()

    def deal_renderer(deal: GenDeal) -> dict[str, str]:
        rollup = rollups.get(deal.id, empty_rollups)
        return render_deal(deal, stages.get(deal.stage_id), rollup.values(), not bare)

    store.set_renderer("deals", deal_renderer)
    store.tables["deals"].load(
        [Record(d.id, ms_of(d.created_at), ms_of(d.modified_at), None, d) for d in dataset.deals]
    )

    companies = {c.id: c for c in dataset.companies}
    company_created = {c.id: now_ms - (400 + c.id % 365) * 86_400_000 for c in dataset.companies}
    store.set_renderer("companies", lambda c: render_company(c, company_created[c.id]))
    store.tables["companies"].load(
        [Record(c.id, company_created[c.id], company_created[c.id], None, c) for c in dataset.companies]
    )
    store.set_renderer(
        "contacts",
        lambda c: render_contact(
            c,
            companies[c.company_id].name if c.company_id in companies else None,
            companies[c.company_id].owner_id if c.company_id in companies else None,
        ),
    )
    store.tables["contacts"].load(
        [Record(c.id, ms_of(c.created_at), ms_of(c.modified_at), None, c) for c in dataset.contacts]
    )

    for kind, records in activity_records.items():
        store.set_renderer(kind, render_activity)
        store.tables[kind].load(records)
    _register_associations(store, dataset, by_type)


def _load_schema(store: HubSpotStore, dataset: Dataset, bare: bool) -> None:
    created = ms_of(dataset.now - timedelta(days=900))
    store.pipelines = {
        p.id: Pipeline(
            p.id,
            p.label,
            order,
            tuple(
                Stage(s.id, s.label, s.display_order, s.probability, s.is_closed, s.is_won) for s in p.stages
            ),
            created,
        )
        for order, p in enumerate(dataset.pipelines)
    }
    for pipeline in dataset.pipelines:
        for stage in pipeline.stages:
            store.add_property("deals", stage_entry_property(stage.id, stage.label))
    store.owners = {
        o.id: Owner(
            o.id,
            o.email,
            o.first_name,
            o.last_name,
            1_000_000 + o.id,
            ((str(zlib.crc32(o.team.encode()) % 10_000_000), o.team),) if o.team else (),
            created,
        )
        for o in dataset.owners
    }
    if not bare:
        for prop in followup_properties():
            store.add_property("deals", prop)
        store.groups["deals"][FOLLOWUP_GROUP] = PropertyGroup(FOLLOWUP_GROUP, "crm-followup", 1)
    else:
        for name, _label, forward, inverse in ASSOCIATION_LABEL_TYPES:
            del name
            store.associations.types.pop(forward, None)
            store.associations.types.pop(inverse, None)


def _register_associations(
    store: HubSpotStore, dataset: Dataset, by_type: dict[str, list[GenActivity]]
) -> None:
    assoc = store.associations
    bare = store.settings.bare
    deals, contacts = dataset.deals, dataset.contacts

    def deal_contacts() -> Iterable[tuple[int, int, tuple[int, ...]]]:
        for deal in deals:
            for link in deal.contacts:
                role_type = None if bare or link.role is None else _ROLE_TYPE.get(link.role)
                yield deal.id, link.contact_id, (3,) if role_type is None else (3, role_type)

    def deal_companies() -> Iterable[tuple[int, int, tuple[int, ...]]]:
        for deal in deals:
            yield deal.id, deal.company_id, (5, 341)

    def contact_companies() -> Iterable[tuple[int, int, tuple[int, ...]]]:
        for contact in contacts:
            yield contact.id, contact.company_id, (1, 279)

    assoc.register("deals", "contacts", deal_contacts)
    assoc.register("deals", "companies", deal_companies)
    assoc.register("contacts", "companies", contact_companies)
    for kind, activities in by_type.items():
        to_deal = assoc.default_type(kind, "deals")
        to_contact = assoc.default_type(kind, "contacts")
        assert to_deal is not None
        assert to_contact is not None
        assoc.register(kind, "deals", _engagement_edges(activities, to_deal.type_id, use_contact=False))
        assoc.register(kind, "contacts", _engagement_edges(activities, to_contact.type_id, use_contact=True))


def _engagement_edges(activities: list[GenActivity], type_id: int, *, use_contact: bool) -> EdgeBuilder:
    types = (type_id,)

    def build() -> Iterable[tuple[int, int, tuple[int, ...]]]:
        for a in activities:
            target = a.contact_id if use_contact else a.deal_id
            if target is not None:
                yield a.id, target, types

    return build
