"""Scalar conversions for Salesforce JSON values: dateTimes with ``+0000`` offsets, dates, numbers, zones.

``read_*`` take the field's name (with the record, ``Task 00T....CompletedDateTime``) and raise
``connectors.values.BadValue`` for a value that is unreadable, of the wrong JSON type or out of bounds; the
deal mapping rejects the opportunity with it. ``parse_*`` are lenient (``None`` for anything unusable) and
serve what is not a deal's data (cursor stamps, conflict checks).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors import values as bounds
from connectors.values import UNREADABLE, WRONG_TYPE, BadValue, lenient, read_number

Record = Mapping[str, Any]


def read_datetime(field: str, value: Any) -> datetime | None:
    """A Salesforce dateTime (``2013-05-20T20:49:32.000+0000``) as an aware UTC datetime inside the bounds."""
    text = bounds.wire_text(field, value, "dateTime")
    if text is None:
        return None
    return bounds.iso_moment(field, text, kind="dateTime", unreadable="not an ISO-8601 dateTime")


def read_date(field: str, value: Any) -> date | None:
    """A Salesforce date (``2026-03-02``; a dateTime's date part is accepted) inside the bounds."""
    text = bounds.wire_text(field, value, "date")
    if text is None:
        return None
    try:
        parsed = date.fromisoformat(text[:10])
    except ValueError:
        raise BadValue(field, UNREADABLE, "not a date (YYYY-MM-DD)") from None
    return bounds.day(field, parsed)


parse_datetime = lenient(read_datetime)
parse_number = lenient(read_number)


def token(value: Any) -> str:
    """A picklist value folded for comparison; values that are not text fold to ""."""
    if not isinstance(value, str):
        return ""
    return value.strip().lower().replace(" ", "_").replace("-", "_")


def zone(name: str | None, default: str = "UTC") -> ZoneInfo:
    """The IANA zone for a ``TimeZoneSidKey`` (Salesforce uses IANA ids), or the default."""
    for candidate in (name, default, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def children(record: Record, relationship: str) -> list[Record]:
    """The rows of a child relationship set; ``None`` and a missing key both mean none."""
    child_set = record.get(relationship)
    if not child_set:
        return []
    if not isinstance(child_set, Mapping):
        raise BadValue(
            relationship, WRONG_TYPE, f"a {type(child_set).__name__} where a child record set belongs"
        )
    rows = child_set.get("records") or []
    if not isinstance(rows, list) or not all(isinstance(row, Mapping) for row in rows):
        raise BadValue(relationship, WRONG_TYPE, "child records that are not a list of records")
    return list(rows)


def written_by(record: Record, user_id: str | None) -> bool:
    """Whether ``user_id`` wrote ``record`` last (``LastModifiedById``; 15- and 18-character ids alike)."""
    writer = record.get("LastModifiedById")
    return bool(user_id and writer) and str(writer)[:15] == str(user_id)[:15]
