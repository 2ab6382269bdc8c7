"""Relative date literals (``TODAY``, ``LAST_N_DAYS:7``, ``THIS_QUARTER``...) as half-open date ranges.

Salesforce starts every range at 00:00 in the querying user's time zone; the sandbox's API user is on UTC,
so ranges start at 00:00 UTC. Weeks start on Sunday (the en_US locale). ``LAST_N_DAYS:n`` includes today
and the n days before it; ``NEXT_N_DAYS:n`` starts tomorrow (both as the SOQL reference defines them).
"""

from __future__ import annotations

from datetime import date, timedelta

RELATIVE_WITHOUT_N = frozenset(
    {
        "YESTERDAY", "TODAY", "TOMORROW",
        "LAST_WEEK", "THIS_WEEK", "NEXT_WEEK",
        "LAST_MONTH", "THIS_MONTH", "NEXT_MONTH",
        "LAST_90_DAYS", "NEXT_90_DAYS",
        "LAST_QUARTER", "THIS_QUARTER", "NEXT_QUARTER",
        "LAST_YEAR", "THIS_YEAR", "NEXT_YEAR",
    }
)  # fmt: skip
RELATIVE_WITH_N = frozenset(
    {
        "LAST_N_DAYS", "NEXT_N_DAYS", "N_DAYS_AGO",
        "LAST_N_WEEKS", "NEXT_N_WEEKS", "N_WEEKS_AGO",
        "LAST_N_MONTHS", "NEXT_N_MONTHS", "N_MONTHS_AGO",
        "LAST_N_QUARTERS", "NEXT_N_QUARTERS",
        "LAST_N_YEARS", "NEXT_N_YEARS", "N_YEARS_AGO",
    }
)  # fmt: skip


def _add_months(d: date, months: int) -> date:
    total = d.year * 12 + d.month - 1 + months
    return date(total // 12, total % 12 + 1, 1)


def _period_start(today: date, unit: str) -> date:
    if unit == "DAY":
        return today
    if unit == "WEEK":
        return today - timedelta(days=(today.weekday() + 1) % 7)
    if unit == "MONTH":
        return today.replace(day=1)
    if unit == "QUARTER":
        return date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
    return date(today.year, 1, 1)


def _shift(start: date, unit: str, n: int) -> date:
    if unit == "DAY":
        return start + timedelta(days=n)
    if unit == "WEEK":
        return start + timedelta(days=7 * n)
    months = {"MONTH": 1, "QUARTER": 3, "YEAR": 12}[unit]
    return _add_months(start, months * n)


def relative_range(name: str, n: int | None, today: date) -> tuple[date, date]:
    """The [start, end) dates a relative literal covers on ``today``."""
    if name in ("YESTERDAY", "TODAY", "TOMORROW"):
        offset = {"YESTERDAY": -1, "TODAY": 0, "TOMORROW": 1}[name]
        day = today + timedelta(days=offset)
        return day, day + timedelta(days=1)
    if name == "LAST_90_DAYS":
        name, n = "LAST_N_DAYS", 90
    if name == "NEXT_90_DAYS":
        name, n = "NEXT_N_DAYS", 90
    parts = name.split("_")
    count = n if n is not None else 1
    if name.endswith("_AGO"):  # N_DAYS_AGO:n = that single day (or week, month, ...)
        unit = parts[1].rstrip("S")
        start = _shift(_period_start(today, unit), unit, -count)
        return start, _shift(start, unit, 1)
    unit = parts[-1].rstrip("S")
    current = _period_start(today, unit)
    if parts[0] == "THIS":
        return current, _shift(current, unit, 1)
    if parts[0] == "LAST":
        if unit == "DAY":  # includes today
            return today - timedelta(days=count), today + timedelta(days=1)
        return _shift(current, unit, -count), current
    # NEXT
    following = _shift(current, unit, 1)
    return following, _shift(following, unit, count)
