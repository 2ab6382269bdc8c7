"""The one duration grammar of policy and settings files: a whole number and a unit.

``"90s"``, ``"15m"``, ``"36h"``, ``"14d"``, ``"2w"``, ``"10 business days"``; units also spelt out
(``"15 minutes"``, ``"2 weeks"``), any case, spaces allowed around the number. Why a small grammar rather
than ISO 8601: admins write these files, and "14d" or "10 business days" is what they say in a meeting.

Each kind of file takes the units that make sense in it, and says which when given another:

* policies (``policies.durations``): hours, days, weeks and business days, counted on the owner's calendar;
* settings (``config.settings``): seconds to weeks of wall-clock time (schedules, leases, look-backs), no
  business days, which need a policy's calendar.
"""

from __future__ import annotations

import re
from collections.abc import Collection

# unit word -> canonical unit
UNITS: dict[str, str] = {
    "s": "seconds",
    "sec": "seconds",
    "second": "seconds",
    "seconds": "seconds",
    "m": "minutes",
    "min": "minutes",
    "minute": "minutes",
    "minutes": "minutes",
    "h": "hours",
    "hour": "hours",
    "hours": "hours",
    "d": "days",
    "day": "days",
    "days": "days",
    "w": "weeks",
    "week": "weeks",
    "weeks": "weeks",
    "bd": "business_days",
    "business day": "business_days",
    "business days": "business_days",
}
SECONDS_PER = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400, "weeks": 7 * 86400}
MAX_DIGITS = 12  # more is never meant; it also keeps the arithmetic after parsing small

_PATTERN = re.compile(rf"^\s*(\d{{1,{MAX_DIGITS}}})\s*([a-z]+(?: [a-z]+)?)\s*$")


class NotADuration(ValueError):
    """The text is not a number and a unit of this grammar."""


class UnitNotAllowed(ValueError):
    """A duration of this grammar, in a unit the file does not take here."""


def read_duration(text: str, allowed: Collection[str]) -> tuple[int, str]:
    """``(amount, canonical unit)`` of ``text``; the unit must be one of ``allowed`` (canonical names).

    Raises ``NotADuration`` or ``UnitNotAllowed``; the caller words the message for its file and pydantic
    adds the place.
    """
    match = _PATTERN.match(text.lower())
    if match is None or match.group(2) not in UNITS:
        raise NotADuration(text)
    unit = UNITS[match.group(2)]
    if unit not in allowed:
        raise UnitNotAllowed(unit)
    return int(match.group(1)), unit


def json_schema_pattern(allowed: Collection[str]) -> str:
    """The JSON Schema ``pattern`` of the texts ``read_duration`` accepts for ``allowed`` (lower case)."""
    words = sorted((word for word, unit in UNITS.items() if unit in allowed), key=lambda w: (-len(w), w))
    return rf"^\s*\d{{1,{MAX_DIGITS}}}\s*({'|'.join(re.escape(w) for w in words)})\s*$"
