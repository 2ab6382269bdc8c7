"""Field values between JSON and the store: Salesforce's wire formats for dates, datetimes and numbers.

Datetimes go out as ``2024-05-20T20:49:32.000+0000`` (UTC, milliseconds, offset without a colon) and come in
as any ISO 8601 form with ``Z`` or an offset; dates are ``YYYY-MM-DD`` both ways.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from crm_sandbox.salesforce.schema import NUMBER_TYPES, TEXT_TYPES, FieldDef


def format_datetime(value: datetime) -> str:
    value = value.astimezone(UTC)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}+0000"


def parse_datetime(text: str) -> datetime:
    """An ISO 8601 datetime with ``Z``, ``+hh:mm`` or ``+hhmm``; naive means UTC (as Salesforce assumes)."""
    cleaned = text.strip()
    if cleaned.endswith("Z"):
        cleaned = cleaned[:-1] + "+00:00"
    elif len(cleaned) > 5 and cleaned[-5] in "+-" and cleaned[-4:].isdigit():
        cleaned = cleaned[:-2] + ":" + cleaned[-2:]
    value = datetime.fromisoformat(cleaned)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def to_json(value: Any) -> Any:
    """A stored value as Salesforce serialises it."""
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def from_json(fd: FieldDef, value: Any) -> Any:
    """Convert a JSON value for ``fd``; raises ValueError with Salesforce's wording when it does not fit."""
    if value is None:
        return None
    t = fd.type
    if t in TEXT_TYPES:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(f"Cannot deserialize instance of string from {_kind(value)} value {value}")
        return value if isinstance(value, str) else str(value)
    if t == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ValueError(f"Cannot deserialize instance of boolean from {_kind(value)} value {value}")
    if t in NUMBER_TYPES:
        if isinstance(value, bool):
            raise ValueError(f"Cannot deserialize instance of double from VALUE_TRUE value {value}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(
                f"Cannot deserialize instance of double from {_kind(value)} value {value}"
            ) from None
        return int(number) if t == "int" else number
    if t == "date":
        if not isinstance(value, str):
            raise ValueError(f"Cannot deserialize instance of date from {_kind(value)} value {value}")
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            raise ValueError(f"Cannot deserialize instance of date from VALUE_STRING value {value}") from None
    if t == "datetime":
        if not isinstance(value, str):
            raise ValueError(f"Cannot deserialize instance of datetime from {_kind(value)} value {value}")
        try:
            return parse_datetime(value)
        except ValueError:
            raise ValueError(
                f"Cannot deserialize instance of datetime from VALUE_STRING value {value}"
            ) from None
    return value


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "VALUE_TRUE" if value else "VALUE_FALSE"
    if isinstance(value, str):
        return "VALUE_STRING"
    if isinstance(value, int | float):
        return "VALUE_NUMBER_INT" if isinstance(value, int) else "VALUE_NUMBER_FLOAT"
    if isinstance(value, list):
        return "START_ARRAY"
    return "START_OBJECT"
