"""Bounds checks on CRM values, and the readers both connectors share (``read_number``, ``wire_text``,
``iso_moment``, ``lenient`` for the ``parse_*`` functions), for both mappings (docs/crm-fields.md, "Bounds").

A CRM value is either usable, empty (``None``: the field is simply not set), or wrong; a wrong value raises
``BadValue`` naming the field and one of three reasons, and the mapping rejects the whole deal with it
(``BadValue.skip``: ``SkipRecord``): a value out of bounds is never read as "not set".

    out_of_range   a number or date outside ``policies.bounds`` (an interval of 10^9 days, -5 days, 1e400,
                   the year 9999)
    unreadable     not a number or a date at all ("NaN", "next Tuesday")
    wrong_type     a JSON type the field cannot have (a list where a text belongs)

Messages name the field and, for numbers and dates, the value (they are not personal data); text values are
never quoted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Final, NoReturn, TypeVar

from connectors.errors import SkipRecord
from policies.bounds import (
    EARLIEST_DATE,
    EARLIEST_MOMENT,
    LATEST_DATE,
    LATEST_MOMENT,
    MAX_INTERVAL_DAYS,
    MAX_MAGNITUDE,
)

OUT_OF_RANGE: Final = "out_of_range"
UNREADABLE: Final = "unreadable"
WRONG_TYPE: Final = "wrong_type"

T = TypeVar("T")


class BadValue(ValueError):
    """A CRM value the domain cannot take; ``field`` is the CRM's field name, ``reason`` one of the above
    (or a mapping's own word for a record it cannot place: ``unknown_stage``, ``missing_date``)."""

    def __init__(self, field: str, reason: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.reason = reason
        self.detail = detail

    def skip(self, object_type: str, record_id: str, where: str = "") -> SkipRecord:
        """The whole record rejected for this value: ``SkipRecord`` with this field and reason, its message
        ``"<object_type> <record_id>: <where><field>: <detail>"`` (``where`` as ``"history: "``)."""
        return SkipRecord(
            f"{object_type} {record_id}: {where}{self}",
            object_type=object_type,
            record_id=record_id,
            field=self.field,
            reason=self.reason,
        )


def lenient(read: Callable[[str, object], T | None]) -> Callable[[object], T | None]:
    """A ``read_*`` function made lenient (``parse_*``): None when the value is empty, unreadable or out of
    bounds, for what is not a deal's data (cursor stamps, conflict checks, housekeeping)."""

    def parse(value: object) -> T | None:
        try:
            return read("-", value)
        except BadValue:
            return None

    parse.__doc__ = f"Lenient ``{read.__name__}``: None when empty, unreadable or out of bounds."
    return parse


def read_number(field: str, value: object) -> float | None:
    """A number (a JSON number, or a numeric string as HubSpot sends every value), finite and bounded; None
    when empty."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadValue(field, WRONG_TYPE, f"a {type(value).__name__} where a number belongs")
    try:
        number = float(value)  # surrounding white space is allowed, as float() allows it
    except ValueError:
        raise BadValue(field, UNREADABLE, "not a number") from None
    except OverflowError:  # an int beyond a float's range
        raise BadValue(field, OUT_OF_RANGE, "a number beyond a float's range") from None
    return finite_number(field, number)


def finite_number(field: str, number: float) -> float:
    """``number`` if it is finite and at most ``MAX_MAGNITUDE`` in size."""
    if math.isnan(number):
        raise BadValue(field, UNREADABLE, "not a number (NaN)")
    if math.isinf(number) or abs(number) > MAX_MAGNITUDE:
        raise BadValue(field, OUT_OF_RANGE, f"{_number(number)} is larger than {MAX_MAGNITUDE:.0e} in size")
    return number


def interval_days(field: str, number: float | None) -> int | None:
    """An agreed interval: rounded to whole days, 1 to ``MAX_INTERVAL_DAYS``; None when not set."""
    if number is None:
        return None
    if math.isnan(number):
        raise BadValue(field, UNREADABLE, "not a number (NaN)")
    if math.isinf(number) or not 1 <= round(number) <= MAX_INTERVAL_DAYS:
        raise BadValue(
            field, OUT_OF_RANGE, f"an interval of {_number(number)} days is not 1 to {MAX_INTERVAL_DAYS} days"
        )
    return round(number)


def moment(field: str, value: datetime | None) -> datetime | None:
    """A datetime inside ``EARLIEST_MOMENT`` .. ``LATEST_MOMENT``."""
    if value is not None and not EARLIEST_MOMENT <= value <= LATEST_MOMENT:
        _out_of_range(field, value)
    return value


def iso_moment(field: str, text: str, *, kind: str, unreadable: str) -> datetime:
    """An ISO-8601 ``text`` as an aware UTC datetime (no offset: UTC) inside the bounds; ``kind`` is what the
    CRM calls the type (``dateTime``) and ``unreadable`` the detail when ``text`` is no ISO-8601 at all."""
    try:
        parsed = datetime.fromisoformat(text)
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except ValueError:
        raise BadValue(field, UNREADABLE, unreadable) from None
    except OverflowError:  # an offset that moves a moment at the calendar's end past it
        raise BadValue(field, OUT_OF_RANGE, f"a {kind} at the end of the calendar") from None
    if not EARLIEST_MOMENT <= parsed <= LATEST_MOMENT:
        _out_of_range(field, parsed)
    return parsed


def wire_text(field: str, value: object, kind: str) -> str | None:
    """``value`` when it is text, None when empty; ``BadValue`` (wrong type) naming ``kind`` otherwise."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadValue(field, WRONG_TYPE, f"a {type(value).__name__} where a {kind} belongs")
    return value


def day(field: str, value: date | None) -> date | None:
    """A date inside ``EARLIEST_DATE`` .. ``LATEST_DATE``."""
    if value is not None and not EARLIEST_DATE <= value <= LATEST_DATE:
        _out_of_range(field, value)
    return value


def text(field: str, value: object) -> str | None:
    """A text value: strings as they are, numbers and booleans as text, ``None`` or "" as not set."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    raise BadValue(field, WRONG_TYPE, f"a {type(value).__name__} where a text belongs")


def scalar(field: str, value: object) -> str | int | float | bool | None:
    """A JSON scalar as it came (the value of an extra field a policy reads); lists and objects are wrong."""
    if value is None or isinstance(value, str | int | float | bool):
        if isinstance(value, float):
            return finite_number(field, value)
        return value
    raise BadValue(field, WRONG_TYPE, f"a {type(value).__name__} where a single value belongs")


def ms_in_range(field: str, epoch_ms: int) -> int:
    """A millisecond epoch inside the bounds (checked before any datetime is built from it)."""
    if not _EARLIEST_MS <= epoch_ms <= _LATEST_MS:
        raise BadValue(field, OUT_OF_RANGE, f"the millisecond time {epoch_ms} is outside {_RANGE}")
    return epoch_ms


_RANGE = f"{EARLIEST_DATE.isoformat()}..{LATEST_DATE.isoformat()}"
_EARLIEST_MS = int(EARLIEST_MOMENT.timestamp() * 1000)
_LATEST_MS = int(LATEST_MOMENT.timestamp() * 1000)


def _out_of_range(field: str, value: date) -> NoReturn:
    raise BadValue(field, OUT_OF_RANGE, f"{value.isoformat()} is outside {_RANGE}")


def _number(number: float) -> str:
    return f"{number:.6g}" if math.isfinite(number) else str(number)
