"""HubSpot's value formats: every property value is a string on the wire; these read and write them.

Datetimes arrive as ISO-8601 UTC (``2026-03-01T09:30:00.123Z``) or millisecond epochs; date-only
properties are midnight UTC (reference §3); search filters take millisecond epochs (reference §4).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from functools import lru_cache
from zoneinfo import available_timezones

from policies.model import FieldValue


def parse_datetime(value: object) -> datetime | None:
    """ISO-8601 (``…Z``) or a millisecond epoch, as an aware UTC datetime; None when empty or unreadable."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_date(value: object) -> date | None:
    """A date-only property: ``2026-03-02``, a midnight-UTC datetime, or a millisecond epoch."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if len(text) == 10 and text[4] == "-":
        try:
            return date.fromisoformat(text)
        except ValueError:
            return None
    moment = parse_datetime(text)
    return None if moment is None else moment.date()


def parse_float(value: object) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(str(value))
    except ValueError:
        return None


def parse_int(value: object) -> int | None:
    number = parse_float(value)
    return None if number is None else round(number)


def ms(moment: datetime) -> int:
    """Milliseconds since the epoch: HubSpot's search filter format."""
    return int(moment.timestamp() * 1000)


def iso_ms(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def format_value(value: FieldValue) -> str:
    """A domain value as HubSpot wants it written (dates at midnight UTC as ms, datetimes ISO, '' clears)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return iso_ms(value)
    if isinstance(value, date):
        return str(ms(datetime.combine(value, time(0), tzinfo=UTC)))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def typed_value(value: object, hubspot_type: str | None) -> FieldValue:
    """A property value typed by its HubSpot property type (number, bool, date, datetime; else string)."""
    if value is None or value == "":
        return None
    if hubspot_type == "number":
        return parse_float(value)
    if hubspot_type == "bool":
        return str(value).lower() == "true"
    if hubspot_type == "date":
        return parse_date(value)
    if hubspot_type == "datetime":
        return parse_datetime(value)
    return str(value)


def hubspot_time_zone(value: object) -> str | None:
    """``hs_timezone`` (``america_slash_new_york``) as an IANA name (``America/New_York``), if it is one."""
    if not value:
        return None
    return _zones_by_folded_name().get(str(value).replace("_slash_", "/").casefold())


@lru_cache(maxsize=1)
def _zones_by_folded_name() -> Mapping[str, str]:
    return {name.casefold(): name for name in available_timezones()}
