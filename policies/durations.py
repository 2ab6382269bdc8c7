"""Durations in policy files: ``"36h"``, ``"14d"``, ``"2w"``, ``"10 business days"``.

The text follows the one duration grammar of policy and settings files (``config.durations``); policies take
its hours, days, weeks and business days. Calendar units (hours, days, weeks) are wall-clock time in the
owner's time zone; business days skip weekends, public holidays and company days off (see
``policies.calendar``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

from config.durations import NotADuration, UnitNotAllowed, json_schema_pattern, read_duration
from policies.bounds import MAX_DAYS

POLICY_UNITS = ("hours", "days", "weeks", "business_days")
DURATION_HELP = 'a duration such as "36h", "14d", "2w" or "10 business days"'


_HOURS_PER = {"hours": 1, "days": 24, "weeks": 24 * 7, "business_days": 24}


@dataclass(frozen=True, slots=True)
class Duration:
    """An amount of hours, days, weeks or business days; ``days`` is the calendar-day equivalent."""

    amount: int
    unit: str  # "hours" | "days" | "weeks" | "business_days"
    delta: timedelta = field(init=False, compare=False, repr=False)  # elapsed-time length (see ``hours``)
    label: str = field(init=False, compare=False, repr=False)  # how policies and explanations write it

    def __post_init__(self) -> None:
        object.__setattr__(self, "delta", timedelta(hours=self.hours))
        if self.unit == "business_days":
            label = f"{self.amount} business day{'s' if self.amount != 1 else ''}"
        else:
            label = f"{self.amount}{self.unit[0]}"
        object.__setattr__(self, "label", label)

    @property
    def is_business(self) -> bool:
        return self.unit == "business_days"

    @property
    def hours(self) -> int:
        """Length in hours for calendar units (business days count as 24 h each, for comparisons only)."""
        return self.amount * _HOURS_PER[self.unit]

    def __str__(self) -> str:
        return self.label  # worked out once: durations appear in many explanations


@lru_cache(maxsize=1024)
def days(amount: int) -> Duration:
    """``amount`` calendar days; shared instances, since the engine needs the same few very often."""
    return Duration(amount, "days")


def parse_duration(value: Any) -> Duration:
    """Parse a policy duration; a ``ValueError`` names the accepted forms (pydantic adds the place)."""
    if isinstance(value, Duration):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"expected {DURATION_HELP}")  # noqa: TRY004 pydantic reports ValueError with its place
    if isinstance(value, int):
        raise ValueError(f'a bare number is ambiguous: write "{value}d" or "{value}h" ({DURATION_HELP})')  # noqa: TRY004
    try:
        amount, unit = read_duration(value, POLICY_UNITS)
    except NotADuration:
        raise ValueError(f"{value!r} is not {DURATION_HELP}") from None
    except UnitNotAllowed as exc:
        raise ValueError(
            f"{value!r}: a policy counts hours, days, weeks or business days, not {exc} ({DURATION_HELP})"
        ) from None
    if amount <= 0:
        raise ValueError(f"{value!r}: a duration must be positive")
    if amount * _HOURS_PER[unit] > MAX_DAYS * 24:  # before building it: its timedelta could overflow
        raise ValueError(f"{value!r}: a duration may be at most {MAX_DAYS} days (ten years)")
    return Duration(amount, unit)


PolicyDuration = Annotated[
    Duration,
    BeforeValidator(parse_duration),
    PlainSerializer(str, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": json_schema_pattern(POLICY_UNITS),
            "description": DURATION_HELP,
        }
    ),
]
