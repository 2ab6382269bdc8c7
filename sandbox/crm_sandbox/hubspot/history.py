"""Property histories: every value a record's property held, as ``propertiesWithHistory`` returns them.

HubSpot keeps, per record and property, the list of values the property took, each with the moment it was
set and where it came from (reference §2: ``propertiesWithHistory: {name: [{value, timestamp, sourceType,
sourceId?, sourceLabel?, updatedByUserId?}]}``). The sandbox keeps the same:

* a seeded record's history comes from the dataset: a deal generated with histories (``Dataset.history``)
  gets one version per history row of its mapped properties (stage, amount, close date, owner, next step,
  crm-followup's custom properties, closed lost reason); any other property it has, and every property of a
  record without rows, holds its value since the record's creation (one version at ``createdate``);
* every write through the API adds a version per property it changed, at the write's time, with
  ``sourceType`` ``INTEGRATION`` (what a private app's writes are reported as [field reports]); a cleared
  property gets a version with the value ``""``;
* versions are served newest first [unverified: the order HubSpot lists them in], only for properties that
  have any.

Histories are rendered on a record's first history read (or first write), so loading a large portal stays
cheap. Each record's versions are a dict that is replaced, never changed in place, so ``snapshot()`` copies
one level.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date
from typing import Any

from crm_sandbox.dataset import GenFieldChange
from crm_sandbox.hubspot.records import Record
from crm_sandbox.hubspot.render import date_ms, format_number, iso_ms, ms_of

__all__ = ["DEAL_HISTORY_PROPERTIES", "PropertyHistory", "Version", "deal_versions"]

# (value, timestamp ms, sourceType, sourceId, updatedByUserId)
Version = tuple[str, int, str, str | None, int | None]
Versions = Mapping[str, tuple[Version, ...]]
Seeder = Callable[[Record, Mapping[str, str]], dict[str, tuple[Version, ...]]]

WRITE_SOURCE = "INTEGRATION"
SEED_SOURCE = "CRM_UI"

# dataset history field -> (deal property, custom property of crm-followup)
DEAL_HISTORY_PROPERTIES: Mapping[str, tuple[str, bool]] = {
    "stage": ("dealstage", False),
    "amount": ("amount", False),
    "close_date": ("closedate", False),
    "owner": ("hubspot_owner_id", False),
    "next_step": ("hs_next_step", False),
    "closed_lost_reason": ("closed_lost_reason", False),
    "next_step_why": ("followup_next_step_why", True),
    "next_step_date": ("followup_next_step_date", True),
    "agreed_interval_days": ("followup_agreed_interval_days", True),
    "agreed_channel": ("followup_agreed_channel", True),
    "readiness": ("followup_readiness", True),
    "qualification_score": ("followup_qualification_score", True),
}


def _rendered(name: str, value: Any) -> str:
    """A dataset history value as HubSpot stores the property (see render.render_deal)."""
    if value is None:
        return ""
    if name in ("amount", "qualification_score"):
        return format_number(float(value))
    if name == "close_date" and isinstance(value, date):
        return iso_ms(date_ms(value))
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def deal_versions(
    rows: Iterable[GenFieldChange], owner_user_ids: Mapping[int, int], *, custom: bool
) -> dict[str, list[Version]]:
    """The versions a deal's dataset history rows make, oldest first (``custom``: the portal has
    crm-followup's properties)."""
    versions: dict[str, list[Version]] = {}
    for row in rows:
        mapped = DEAL_HISTORY_PROPERTIES.get(row.field)
        if mapped is None or (mapped[1] and not custom):
            continue
        prop = mapped[0]
        user = (
            owner_user_ids.get(int(str(row.value)))
            if row.field == "owner" and row.value is not None
            else None
        )
        source_id = f"userId:{user}" if user is not None else None
        versions.setdefault(prop, []).append(
            (_rendered(row.field, row.value), ms_of(row.at), SEED_SOURCE, source_id, user)
        )
    return versions


def _since_creation(
    record: Record, props: Mapping[str, str], skip: Iterable[str]
) -> dict[str, list[Version]]:
    skipped = set(skip)
    return {
        name: [(value, record.created_ms, SEED_SOURCE, None, None)]
        for name, value in props.items()
        if name not in skipped and value != ""
    }


class PropertyHistory:
    """The versions of every record's properties, per object type (see the module docstring)."""

    def __init__(self, kinds: Iterable[str]) -> None:
        self._versions: dict[str, dict[int, Versions]] = {kind: {} for kind in kinds}
        self._seeders: dict[str, Seeder] = {}

    def seed(self, kind: str, seeder: Seeder) -> None:
        """How the history of ``kind``'s loaded records is rendered on first use."""
        self._seeders[kind] = seeder

    def clear(self) -> None:
        for versions in self._versions.values():
            versions.clear()
        self._seeders.clear()

    def of(self, kind: str, record: Record, props: Mapping[str, str], system: Iterable[str]) -> Versions:
        """The versions of ``record`` (rendered now if this is its first use)."""
        table = self._versions[kind]
        found = table.get(record.id)
        if found is None:
            seeder = self._seeders.get(kind)
            rendered = dict(seeder(record, props)) if seeder is not None else {}
            for name, versions in _since_creation(record, props, (*rendered, *system)).items():
                rendered[name] = tuple(versions)
            found = table[record.id] = rendered
        return found

    def created(self, kind: str, record: Record, props: Mapping[str, str], now_ms: int) -> None:
        """A record created through the API: every property it was given holds its value from now."""
        self._versions[kind][record.id] = {
            name: ((value, now_ms, WRITE_SOURCE, None, None),) for name, value in props.items() if value != ""
        }

    def changed(
        self,
        kind: str,
        before: Record,
        props_before: Mapping[str, str],
        changes: Mapping[str, str | None],
        now_ms: int,
        system: Iterable[str],
    ) -> None:
        """A write changed ``changes`` on ``before``: one version per changed property."""
        current = dict(self.of(kind, before, props_before, system))
        for name, value in changes.items():
            current[name] = (*current.get(name, ()), (value or "", now_ms, WRITE_SOURCE, None, None))
        self._versions[kind][before.id] = current

    def as_json(self, versions: Versions, names: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        """``propertiesWithHistory`` for ``names``: each property's versions, newest first (of two with the
        same timestamp, the one written later first)."""
        out: dict[str, list[dict[str, Any]]] = {}
        for name in names:
            found = versions.get(name)
            if not found:
                continue
            oldest_first = [v for _, v in sorted(enumerate(found), key=lambda pair: (pair[1][1], pair[0]))]
            out[name] = [_version_json(v) for v in reversed(oldest_first)]
        return out

    def snapshot(self) -> dict[str, dict[int, Versions]]:
        return {kind: dict(versions) for kind, versions in self._versions.items()}

    def restore(self, state: dict[str, dict[int, Versions]]) -> None:
        self._versions = {kind: dict(versions) for kind, versions in state.items()}


def _version_json(version: Version) -> dict[str, Any]:
    value, stamp, source, source_id, user = version
    body: dict[str, Any] = {"value": value, "timestamp": iso_ms(stamp), "sourceType": source}
    if source_id is not None:
        body["sourceId"] = source_id
    if user is not None:
        body["updatedByUserId"] = user
    return body
