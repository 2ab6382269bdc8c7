"""What a snapshot must hold beyond its types, so the engine never meets a value it cannot compute with.

pydantic checks the shape of a snapshot (``policies.codec``); this walk checks the values that are well
typed but unusable: a time zone zoneinfo does not know (``Mars/Base``), a number that is not finite or
absurdly large, a date so far out that adding a policy duration overflows, an agreed interval longer than
any policy duration. Each problem is a JSON path and a message; the caller adds the file position.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import fields, is_dataclass
from datetime import date, datetime

from config.time_zones import known_time_zone, unknown_time_zone
from policies.bounds import EARLIEST_DATE, LATEST_DATE, MAX_INTERVAL_DAYS, MAX_MAGNITUDE

Loc = tuple[str | int, ...]

# The connectors' bounds (policies.bounds): a snapshot holds nothing a CRM pull would have rejected.
MIN_YEAR, MAX_YEAR = EARLIEST_DATE.year, LATEST_DATE.year
MAX_NUMBER = MAX_MAGNITUDE  # amounts, scores, probabilities, custom numeric fields
ZONE_FIELDS = frozenset({"time_zone"})


def value_problems(value: object, loc: Loc = ()) -> Iterator[tuple[Loc, str]]:
    """Every unusable value inside ``value`` (a snapshot or any part of one), with its path."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, datetime | date):
        if not MIN_YEAR <= value.year <= MAX_YEAR:
            yield loc, f"{value.isoformat()} is outside the years {MIN_YEAR}-{MAX_YEAR}"
    elif isinstance(value, int):
        if loc[-1:] == ("interval_days",) and not 1 <= value <= MAX_INTERVAL_DAYS:
            yield loc, f"{value} days: an agreed interval is between 1 and {MAX_INTERVAL_DAYS} days"
        elif abs(value) > MAX_NUMBER:
            yield loc, f"{value} is too large (at most {MAX_NUMBER:g})"
    elif isinstance(value, float):
        if not math.isfinite(value):
            yield loc, f"{value} is not a finite number"
        elif abs(value) > MAX_NUMBER:
            yield loc, f"{value:g} is too large (at most {MAX_NUMBER:g})"
    elif is_dataclass(value) and not isinstance(value, type):
        for field in fields(value):
            child = getattr(value, field.name)
            if field.name in ZONE_FIELDS and isinstance(child, str) and not known_time_zone(child):
                yield (*loc, field.name), unknown_time_zone(child)
            else:
                yield from value_problems(child, (*loc, field.name))
    elif isinstance(value, Mapping):
        for key, child in value.items():
            yield from value_problems(child, (*loc, str(key)))
    elif isinstance(value, tuple | list | frozenset):
        for index, child in enumerate(value if not isinstance(value, frozenset) else sorted(value, key=str)):
            yield from value_problems(child, (*loc, index))
