"""HubSpot's value formats: every property value is a string on the wire; these read and write them.

Datetimes arrive as ISO-8601 UTC (``2026-03-01T09:30:00.123Z``) or millisecond epochs; date-only properties
are midnight UTC (https://developers.hubspot.com/docs/api/crm/deals); search filters take millisecond epochs
(https://developers.hubspot.com/docs/api/crm/search).

Two families: ``read_*`` take the property's name and raise ``connectors.values.BadValue`` for a value that
is unreadable, of the wrong type or out of bounds (the deal mapping rejects the deal with it); ``parse_*``
are lenient (``None`` for anything unusable) and serve what is not a deal's data (cursors, housekeeping).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from functools import lru_cache
from zoneinfo import available_timezones

from connectors import values as bounds
from connectors.values import OUT_OF_RANGE, UNREADABLE, WRONG_TYPE, BadValue, lenient, read_number
from policies.model import FieldValue

_EPOCH_MS = re.compile(r"-?\d{1,19}")


def read_datetime(field: str, value: object) -> datetime | None:
    """ISO-8601 (``…Z``) or a millisecond epoch, as an aware UTC datetime within the bounds; None if empty."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise BadValue(field, WRONG_TYPE, f"a {type(value).__name__} where a datetime belongs")
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        if not _EPOCH_MS.fullmatch(text):
            raise BadValue(field, OUT_OF_RANGE, f"a millisecond time of {len(text)} digits is out of range")
        return datetime.fromtimestamp(bounds.ms_in_range(field, int(text)) / 1000, tz=UTC)
    unreadable = "not an ISO-8601 datetime or a millisecond time"
    return bounds.iso_moment(field, text.replace("Z", "+00:00"), kind="datetime", unreadable=unreadable)


def read_date(field: str, value: object) -> date | None:
    """A date-only property: ``2026-03-02``, a midnight-UTC datetime, or a millisecond epoch; bounded."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip()
        if len(text) == 10 and text[4] == "-":
            try:
                return bounds.day(field, date.fromisoformat(text))
            except ValueError as exc:
                if isinstance(exc, BadValue):
                    raise
                raise BadValue(field, UNREADABLE, "not a date (YYYY-MM-DD)") from None
    moment = read_datetime(field, value)
    return None if moment is None else bounds.day(field, moment.date())


parse_datetime = lenient(read_datetime)
parse_date = lenient(read_date)
parse_float = lenient(read_number)


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


def typed_value(field: str, value: object, hubspot_type: str | None) -> FieldValue:
    """A property value typed by its HubSpot property type (number, bool, date, datetime; else string);
    ``BadValue`` as the ``read_*`` functions."""
    if value is None or value == "":
        return None
    if hubspot_type == "number":
        return read_number(field, value)
    if hubspot_type == "bool":
        return str(bounds.text(field, value)).lower() == "true"
    if hubspot_type == "date":
        return read_date(field, value)
    if hubspot_type == "datetime":
        return read_datetime(field, value)
    return bounds.text(field, value)


def hubspot_time_zone(value: object) -> str | None:
    """``hs_timezone`` (``america_slash_new_york``) as an IANA name (``America/New_York``), if it is one."""
    if not value or not isinstance(value, str):
        return None
    return _zones_by_folded_name().get(value.replace("_slash_", "/").casefold())


@lru_cache(maxsize=1)
def _zones_by_folded_name() -> Mapping[str, str]:
    return {name.casefold(): name for name in available_timezones()}
