"""The HubSpot portal the sandbox serves: objects, associations, properties, pipelines, owners and lists.

All state sits in one ``HubSpotStore`` that the route handlers call from the server's event loop (handlers
are ``async`` and never await while touching it, so no lock is needed). Writes go through methods here, so
the portal's rules hold whichever route makes them: property validation, ``hs_lastmodifieddate`` bumped on
change (never on archive), stage-derived deal properties, and the deal's engagement roll-ups
(``notes_next_activity_date`` & co.) recomputed when an engagement is associated, changed or archived.

``snapshot()`` / ``restore()`` copy the mutable state, for the shared ``/__sandbox__/`` control routes.
Records are replaced on every write, never changed in place, so a snapshot copies tables shallowly
(milliseconds for 100,000 deals) and shares the records themselves.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from crm_sandbox.clock import SandboxClock
from crm_sandbox.hubspot.associations import AssociationStore
from crm_sandbox.hubspot.catalog import (
    ENGAGEMENT_TYPES,
    OBJECT_TYPES,
    default_association_types,
    role_association_types,
)
from crm_sandbox.hubspot.errors import HubSpotError
from crm_sandbox.hubspot.lists import ListStore
from crm_sandbox.hubspot.properties import PropertyDef, PropertyGroup, PropertyOption
from crm_sandbox.hubspot.properties_builtin import builtin_groups, builtin_properties
from crm_sandbox.hubspot.records import ObjectTable, Record, Renderer
from crm_sandbox.hubspot.render import deal_rollups, format_number, iso_ms, ms_of
from crm_sandbox.hubspot.search import SearchIndex
from crm_sandbox.hubspot.validation import normalise_properties

__all__ = ["HubSpotStore", "Owner", "Pipeline", "Stage"]

_MODIFIED = {"contacts": "lastmodifieddate"}
_SCHEMA_VERSIONS = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Stage:
    id: str
    label: str
    display_order: int
    probability: float
    is_closed: bool
    is_won: bool


@dataclass(frozen=True, slots=True)
class Pipeline:
    id: str
    label: str
    display_order: int
    stages: tuple[Stage, ...]
    created_ms: int


@dataclass(frozen=True, slots=True)
class Owner:
    id: int
    email: str
    first_name: str
    last_name: str
    user_id: int
    teams: tuple[tuple[str, str], ...]  # (team id, name)
    created_ms: int
    archived: bool = False


@dataclass(slots=True)
class PortalSettings:
    bare: bool = False
    search_lag_ms: int = 0
    time_zone: str = "UTC"
    extra: dict[str, Any] = field(default_factory=dict)


class HubSpotStore:
    """One sandbox portal's data; see the module docstring for the rules it keeps."""

    def __init__(self, clock: SandboxClock, *, bare: bool = False, search_lag_ms: int = 0) -> None:
        self.clock = clock
        self.settings = PortalSettings(bare=bare, search_lag_ms=search_lag_ms)
        self.tables: dict[str, ObjectTable] = {}
        self.indexes: dict[str, SearchIndex] = {}
        self.properties: dict[str, dict[str, PropertyDef]] = {
            kind: {p.name: p for p in defs} for kind, defs in builtin_properties().items()
        }
        self.groups: dict[str, dict[str, PropertyGroup]] = {
            kind: {g.name: g for g in groups} for kind, groups in builtin_groups().items()
        }
        # unique across all stores of the process: the key of cached read plans (crm_sandbox.hubspot.http)
        self.schema_version = next(_SCHEMA_VERSIONS)
        self.associations = AssociationStore([*default_association_types(), *role_association_types()])
        self.pipelines: dict[str, Pipeline] = {}
        self.owners: dict[int, Owner] = {}
        self.lists = ListStore()
        for kind in OBJECT_TYPES:
            self.set_renderer(kind, lambda source: {})

    def set_renderer(self, kind: str, renderer: Renderer) -> None:
        """(Re)create the table of ``kind`` with the renderer for its seeded records."""
        created = "hs_createdate" if kind in ENGAGEMENT_TYPES else "createdate"
        table = ObjectTable(kind, renderer, _MODIFIED.get(kind, "hs_lastmodifieddate"), created)
        self.tables[kind] = table
        self.indexes[kind] = SearchIndex(table, functools.partial(self.property_type, kind))

    def now_ms(self) -> int:
        return ms_of(self.clock.now())

    # -- schema ----------------------------------------------------------------------------------------
    def add_property(self, kind: str, definition: PropertyDef) -> None:
        """Define (or redefine) a property; renews ``schema_version`` so cached read plans are redone."""
        self.properties[kind][definition.name] = definition
        self.schema_version = next(_SCHEMA_VERSIONS)

    def property_type(self, kind: str, name: str) -> str | None:
        definition = self.properties[kind].get(name)
        return definition.type if definition is not None else None

    def _is_option(self, kind: str, name: str, value: str) -> bool:
        if kind == "deals" and name == "dealstage":
            return any(s.id == value for p in self.pipelines.values() for s in p.stages)
        if kind == "deals" and name == "pipeline":
            return value in self.pipelines
        if name == "hubspot_owner_id":
            return value.isdigit() and int(value) in self.owners
        options = self.properties[kind][name].options
        return not options or any(o.value == value for o in options)

    def property_with_options(self, kind: str, definition: PropertyDef) -> PropertyDef:
        """A definition as served: ``dealstage``/``pipeline`` options come from the pipelines."""
        if kind == "deals" and definition.name == "pipeline":
            return definition.with_options(
                tuple(PropertyOption(p.label, p.id, p.display_order) for p in self.pipelines.values())
            )
        if kind == "deals" and definition.name == "dealstage":
            stages = [s for p in self.pipelines.values() for s in p.stages]
            return definition.with_options(
                tuple(PropertyOption(s.label, s.id, s.display_order) for s in stages)
            )
        return definition

    def stage(self, stage_id: str | None) -> Stage | None:
        for pipeline in self.pipelines.values():
            for stage in pipeline.stages:
                if stage.id == stage_id:
                    return stage
        return None

    # -- records ---------------------------------------------------------------------------------------
    def table(self, kind: str) -> ObjectTable:
        return self.tables[kind]

    def find(
        self, kind: str, record_id: str, *, archived: bool = False, id_property: str | None = None
    ) -> Record:
        """A record by id (or by a unique property value), or 404 as HubSpot answers it."""
        table = self.tables[kind]
        record: Record | None = None
        if id_property and id_property != "hs_object_id":
            for candidate in table.iter_live():
                if table.value(candidate, id_property) == record_id:
                    record = candidate
                    break
        elif record_id.isdigit():
            record = table.get(int(record_id), archived=archived)
        if record is None:
            raise HubSpotError(404, "OBJECT_NOT_FOUND", "Resource not found")
        return record

    def create(self, kind: str, properties: Any) -> Record:
        now = self.now_ms()
        values = normalise_properties(
            properties, self.properties[kind], lambda n, v: self._is_option(kind, n, v)
        )
        stored = {k: v for k, v in values.items() if v is not None}
        if kind in ENGAGEMENT_TYPES:
            if kind == "meetings" and "hs_timestamp" not in stored and "hs_meeting_start_time" in stored:
                stored["hs_timestamp"] = stored["hs_meeting_start_time"]
            if "hs_timestamp" not in stored:
                raise HubSpotError(
                    400,
                    "VALIDATION_ERROR",
                    'Property values were not valid: [{"isValid":false,"message":"hs_timestamp is required",'
                    '"error":"REQUIRED_PROPERTY","name":"hs_timestamp"}]',
                )
            if kind == "tasks":
                stored.setdefault("hs_task_status", "NOT_STARTED")
                stored.setdefault("hs_task_type", "TODO")
        if kind == "deals":
            stored.setdefault(
                "pipeline", "default" if "default" in self.pipelines else next(iter(self.pipelines), "")
            )
            self._apply_stage(stored, stored.get("dealstage"), now)
        return self.tables[kind].insert(stored, now)

    def validate(self, kind: str, properties: Any) -> None:
        """Raise the 400 a write of ``properties`` would get, writing nothing."""
        normalise_properties(properties, self.properties[kind], lambda n, v: self._is_option(kind, n, v))

    def update(self, kind: str, record: Record, properties: Any) -> Record:
        """Validate and apply ``properties``; returns the record as stored now (records are replaced)."""
        record = self.tables[kind].records[record.id]  # the caller's object may predate an earlier write
        now = self.now_ms()
        values = normalise_properties(
            properties, self.properties[kind], lambda n, v: self._is_option(kind, n, v)
        )
        table = self.tables[kind]
        current = table.props(record)
        changes = {k: v for k, v in values.items() if current.get(k) != v}
        if kind == "deals" and changes.get("dealstage"):
            staged: dict[str, str] = {}
            self._apply_stage(staged, changes["dealstage"], now)
            changes.update(staged)
        if changes:
            record = table.update(record, dict(changes), now)
            if kind in ENGAGEMENT_TYPES:
                self._refresh_deals_of(kind, record.id)
                record = table.records[record.id]
        return record

    def archive(self, kind: str, record: Record) -> None:
        record = self.tables[kind].records[record.id]
        if record.archived:
            return
        self.tables[kind].archive(record, self.now_ms())
        if kind in ENGAGEMENT_TYPES:
            self._refresh_deals_of(kind, record.id)

    def _apply_stage(self, props: dict[str, str], stage_id: str | None, now_ms: int) -> None:
        stage = self.stage(stage_id)
        if stage is None:
            return
        props["hs_is_closed"] = "true" if stage.is_closed else "false"
        props["hs_is_closed_won"] = "true" if stage.is_won else "false"
        props["hs_deal_stage_probability"] = format_number(stage.probability)
        props[f"hs_date_entered_{stage.id}"] = iso_ms(now_ms)

    # -- associations ----------------------------------------------------------------------------------
    def associate(
        self, from_kind: str, from_id: int, to_kind: str, to_id: int, type_ids: list[int]
    ) -> tuple[int, ...]:
        for type_id in type_ids:
            t = self.associations.types.get(type_id)
            if t is None or t.from_type != from_kind or t.to_type != to_kind:
                raise HubSpotError(
                    400,
                    "VALIDATION_ERROR",
                    f"{type_id} is not a valid association type between {from_kind} and {to_kind}",
                    subCategory="crm.associations.INVALID_ASSOCIATION_TYPE",
                )
        result = self.associations.add(from_kind, to_kind, from_id, to_id, type_ids)
        self._after_association_change(from_kind, from_id, to_kind, to_id)
        return result

    def dissociate(
        self, from_kind: str, from_id: int, to_kind: str, to_id: int, type_ids: list[int] | None
    ) -> bool:
        removed = self.associations.remove(from_kind, to_kind, from_id, to_id, type_ids)
        if removed:
            self._after_association_change(from_kind, from_id, to_kind, to_id)
        return removed

    def _after_association_change(self, from_kind: str, from_id: int, to_kind: str, to_id: int) -> None:
        if from_kind == "deals" and to_kind in ENGAGEMENT_TYPES:
            self.refresh_rollups(from_id)
        elif to_kind == "deals" and from_kind in ENGAGEMENT_TYPES:
            self.refresh_rollups(to_id)

    def live_targets(self, from_kind: str, to_kind: str, from_id: int) -> dict[int, tuple[int, ...]]:
        """Associations of one record whose target is not archived."""
        targets = self.associations.targets(from_kind, to_kind, from_id)
        records = self.tables[to_kind].records
        return {i: t for i, t in targets.items() if (r := records.get(i)) is not None and not r.archived}

    def _refresh_deals_of(self, kind: str, engagement_id: int) -> None:
        for deal_id in self.associations.targets(kind, "deals", engagement_id):
            self.refresh_rollups(deal_id)

    def refresh_rollups(self, deal_id: int) -> None:
        """Recompute a deal's engagement roll-ups; a change bumps its ``hs_lastmodifieddate``."""
        deals = self.tables["deals"]
        deal = deals.get(deal_id)
        if deal is None:
            return
        engagements: list[tuple[str, dict[str, str]]] = []
        for kind in ENGAGEMENT_TYPES:
            table = self.tables[kind]
            for engagement_id in self.live_targets("deals", kind, deal_id):
                engagements.append((kind, table.props(table.records[engagement_id])))
        rollups: dict[str, str | None] = {
            "notes_last_contacted": None,
            "notes_last_updated": None,
            "notes_next_activity_date": None,
        }
        rollups.update(deal_rollups(engagements, self.now_ms()))
        current = deals.props(deal)
        changes = {k: v for k, v in rollups.items() if current.get(k) != v}
        if changes:
            deals.update(deal, changes, self.now_ms())

    # -- search ----------------------------------------------------------------------------------------
    def search_visible(self) -> Callable[[Record], bool] | None:
        """The index-lag filter: records changed within ``search_lag_ms`` are not yet searchable."""
        lag = self.settings.search_lag_ms
        if lag <= 0:
            return None
        horizon = self.now_ms() - lag
        return lambda record: record.updated_ms <= horizon

    # -- snapshots -------------------------------------------------------------------------------------
    def snapshot(self) -> object:
        """A copy of all mutable state (search indexes are rebuilt lazily after a restore)."""
        return {
            "tables": {kind: table.snapshot() for kind, table in self.tables.items()},
            "associations": self.associations.snapshot(),
            "lists": self.lists.snapshot(),
            "properties": {kind: dict(defs) for kind, defs in self.properties.items()},
            "groups": {kind: dict(groups) for kind, groups in self.groups.items()},
        }

    def restore(self, state: object) -> None:
        """Put back a ``snapshot()``; the state stays reusable (tables copy it again)."""
        assert isinstance(state, dict)
        for kind, table_state in state["tables"].items():
            self.tables[kind].restore(table_state)
            self.indexes[kind].reset()
        self.associations.restore(state["associations"])
        self.lists.restore(state["lists"])
        self.properties = {kind: dict(defs) for kind, defs in state["properties"].items()}
        self.schema_version = next(_SCHEMA_VERSIONS)
        self.groups = {kind: dict(groups) for kind, groups in state["groups"].items()}
