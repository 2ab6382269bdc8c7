"""Deal histories from HubSpot: ``propertiesWithHistory`` on a batch read of deals.

HubSpot keeps every value a property took (reference §2: ``propertiesWithHistory: {name: [{value,
timestamp, sourceType, ...}]}``), for every property, with no setting to turn it on. One batch read
(``POST /crm/v3/objects/deals/batch/read``) asks for the histories of the properties below for up to
**50 deals**: a read with ``propertiesWithHistory`` takes fewer inputs than the 100 of a plain batch read
(HubSpot answers more with 400 "The maximum number of inputs supported in a batch request for property
histories is 50" [field reports: activepieces PR #9359, PipedreamHQ PR #8462]; list reads with histories
page at 50 too, ``hubspot/utils/objects.py``). So ``ceil(deals / 50)`` calls read N deals' histories; no
read can do it in fewer. Deals HubSpot no longer has (207 ``OBJECT_NOT_FOUND``) are left out.

Properties read: ``dealstage`` (-> ``stage``), ``pipeline``, ``amount``, ``closedate`` (-> ``close_date``, a
date), ``hubspot_owner_id`` (-> ``owner``), the properties the settings map the canonical fields to
(``hs_next_step`` and crm-followup's custom properties; not crm-followup's own state, which the backtest
simulates) and the extra properties the policy reads. Each version is read with the deal mapping's bounds
(``mapping.py``): a value the mapping would reject rejects the deal's history, naming the property and the
version's timestamp.

The order HubSpot lists versions in is [unverified] (newest first in observed responses); they are sorted
by timestamp here, and of two versions with the same timestamp the one listed first is taken as the later.
How many versions HubSpot keeps per property is [unverified]. Associations have no history: contacts are on
a deal throughout; engagements keep the times they carry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from connectors import values as bounds
from connectors.base import RejectedRecord
from connectors.history import OWN_FIELDS, FieldVersion, HistoryRead, Reader, canonical_readers, read_text
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.fetch import chunked
from connectors.hubspot.options import HubSpotOptions
from connectors.hubspot.values import parse_datetime, read_date, typed_value
from connectors.values import UNREADABLE, BadValue, read_number
from policies.model import FieldValue

HISTORY_BATCH_SIZE = 50  # deals per batch read with propertiesWithHistory (see the module docstring)
ENDPOINT = "deals.batch_read_history"


_CANONICAL = canonical_readers(read_date, read_number)


def _pipeline(name: str, value: object) -> FieldValue:
    return bounds.text(name, value) or "default"


def history_properties(
    options: HubSpotOptions, extra_fields: Iterable[str], field_types: Mapping[str, str]
) -> dict[str, tuple[str, Reader]]:
    """HubSpot property -> (history field name, how a version's value is read)."""
    wanted: dict[str, tuple[str, Reader]] = {
        "dealstage": ("stage", read_text),
        "pipeline": ("pipeline", _pipeline),
        "amount": ("amount", read_number),
        "closedate": ("close_date", read_date),
        "hubspot_owner_id": ("owner", read_text),
    }
    for field, reader in _CANONICAL.items():
        if field not in OWN_FIELDS:
            wanted.setdefault(options.property_for(field), (field.value, reader))
    for name in extra_fields:
        wanted.setdefault(name, (name, _typed(field_types.get(name))))
    return wanted


def _typed(hubspot_type: str | None) -> Reader:
    def read(name: str, value: object) -> FieldValue:
        return typed_value(name, value, hubspot_type)

    return read


def versions_of(
    record: Mapping[str, Any], properties: Mapping[str, tuple[str, Reader]]
) -> list[FieldVersion]:
    """One deal's versions, oldest first per property; ``BadValue`` (field ``property@timestamp``)."""
    history = record.get("propertiesWithHistory") or {}
    if not isinstance(history, Mapping):
        raise BadValue("propertiesWithHistory", UNREADABLE, "not an object of property histories")
    out: list[FieldVersion] = []
    for prop, raw in history.items():
        mapped = properties.get(prop)
        if mapped is None or not isinstance(raw, list):
            continue
        field, reader = mapped
        timed: list[tuple[Any, FieldVersion]] = []
        for version in reversed(raw):  # listed newest first: oldest first, ties keep the later one last
            if not isinstance(version, Mapping):
                raise BadValue(prop, UNREADABLE, "a version that is not an object")
            stamp = version.get("timestamp")
            at = parse_datetime(stamp)
            if at is None:
                raise BadValue(f"{prop}@{stamp}", UNREADABLE, "a version without a readable timestamp")
            value = version.get("value")
            try:
                read = reader(prop, None if value == "" else value)
            except BadValue as bad:
                raise BadValue(f"{prop}@{stamp}", bad.reason, str(bad).split(": ", 1)[-1]) from None
            timed.append((at, FieldVersion(at, field, read)))
        timed.sort(key=lambda pair: pair[0])
        out.extend(version for _, version in timed)
    return out


class HistoryReader:
    """Reads deal histories in batches of 50 (see the module docstring); ``properties`` as
    ``history_properties`` gives them."""

    def __init__(self, client: HubSpotClient, properties: Mapping[str, tuple[str, Reader]]) -> None:
        self._client = client
        self._properties = properties

    @property
    def properties(self) -> list[str]:
        return list(self._properties)

    def read(self, deal_ids: Iterable[str]) -> HistoryRead:
        changes: dict[str, tuple[FieldVersion, ...]] = {}
        rejected: list[RejectedRecord] = []
        for chunk in chunked(list(dict.fromkeys(deal_ids)), HISTORY_BATCH_SIZE):
            body = {
                "inputs": [{"id": i} for i in chunk],
                "properties": ["hs_object_id"],
                "propertiesWithHistory": self.properties,
            }
            response = self._client.send(
                ENDPOINT, "deals.batch", "read", batch_read_input_simple_public_object_id=body
            )
            for record in (response.body or {}).get("results") or []:
                deal_id = str(record.get("id"))
                try:
                    changes[deal_id] = tuple(versions_of(record, self._properties))
                except BadValue as bad:
                    rejected.append(RejectedRecord.of(bad.skip("deal", deal_id, "history of ")))
        return HistoryRead(changes=changes, rejected=tuple(rejected))
