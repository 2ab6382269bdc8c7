"""Scalar conversions for Salesforce JSON values: dateTimes with ``+0000`` offsets, dates, numbers, zones."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Record = Mapping[str, Any]


def parse_datetime(value: Any) -> datetime | None:
    """A Salesforce dateTime (``2013-05-20T20:49:32.000+0000``) as an aware UTC datetime."""
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_date(value: Any) -> date | None:
    if not value:
        return None
    return date.fromisoformat(str(value)[:10])


def parse_number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def token(value: Any) -> str:
    return str(value or "").strip().lower().replace(" ", "_").replace("-", "_")


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
    return list(child_set.get("records") or [])


def written_by(record: Record, user_id: str | None) -> bool:
    """Whether ``user_id`` wrote ``record`` last (``LastModifiedById``; 15- and 18-character ids alike)."""
    writer = record.get("LastModifiedById")
    return bool(user_id and writer) and str(writer)[:15] == str(user_id)[:15]
