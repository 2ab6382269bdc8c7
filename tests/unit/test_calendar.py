"""Business days, working hours, holidays and durations: where due dates may fall."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from policies.calendar import BusinessCalendar
from policies.durations import Duration, parse_duration

BERLIN = BusinessCalendar("Europe/Berlin", country="DE", subdivision="BY", days_off=[date(2026, 12, 24)])
NEW_YORK = BusinessCalendar("America/New_York", start=time(8, 30), end=time(17, 30), country="US")


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 3, 4), True),  # a Wednesday
        (date(2026, 3, 7), False),  # Saturday
        (date(2026, 3, 8), False),  # Sunday
        (date(2026, 4, 3), False),  # Good Friday, national
        (date(2026, 1, 6), False),  # Epiphany, Bavaria only
        (date(2026, 12, 24), False),  # company day off
        (date(2026, 12, 23), True),
    ],
)
def test_business_days_in_bavaria(day: date, expected: bool) -> None:
    """Weekends, national and regional holidays and company days off are not business days."""
    assert BERLIN.is_business_day(day) is expected


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        # inside working hours: unchanged
        (datetime(2026, 3, 4, 10, 15, tzinfo=UTC), datetime(2026, 3, 4, 10, 15, tzinfo=UTC)),
        # 06:00 Berlin is before opening: 09:00 Berlin = 08:00 UTC
        (datetime(2026, 3, 4, 5, 0, tzinfo=UTC), datetime(2026, 3, 4, 8, 0, tzinfo=UTC)),
        # 18:00 Berlin is after closing: the next morning
        (datetime(2026, 3, 4, 17, 0, tzinfo=UTC), datetime(2026, 3, 5, 8, 0, tzinfo=UTC)),
        # Friday evening: Monday morning
        (datetime(2026, 3, 6, 16, 30, tzinfo=UTC), datetime(2026, 3, 9, 8, 0, tzinfo=UTC)),
        # Maundy Thursday evening: Good Friday and Easter Monday are holidays -> Tuesday (summer time, UTC+2)
        (datetime(2026, 4, 2, 18, 0, tzinfo=UTC), datetime(2026, 4, 7, 7, 0, tzinfo=UTC)),
    ],
)
def test_working_moment_in_berlin(moment: datetime, expected: datetime) -> None:
    """Moments outside working hours move to the next opening on a business day, in the local zone."""
    assert BERLIN.working_moment(moment) == expected


def test_working_moment_uses_the_owners_zone_and_hours() -> None:
    """14:00 UTC is 09:00 in New York (opening 08:30): inside; 23:00 UTC is after 17:30 there."""
    assert NEW_YORK.working_moment(datetime(2026, 3, 4, 14, 0, tzinfo=UTC)) == datetime(
        2026, 3, 4, 14, 0, tzinfo=UTC
    )
    assert NEW_YORK.working_moment(datetime(2026, 3, 4, 23, 0, tzinfo=UTC)) == datetime(
        2026, 3, 5, 13, 30, tzinfo=UTC
    )


def test_days_are_wall_clock_days_across_daylight_saving_time() -> None:
    """Fourteen days after 10:00 local before the DST switch is 10:00 local after it (an hour less in UTC)."""
    before = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)  # 10:00 CET
    assert BERLIN.shift(before, Duration(14, "days")) == datetime(2026, 4, 3, 8, 0, tzinfo=UTC)  # 10:00 CEST
    assert BERLIN.due_after(before, Duration(14, "days")) == datetime(2026, 4, 7, 7, 0, tzinfo=UTC)


def test_business_days_skip_weekends_and_holidays() -> None:
    """Three business days after the Thursday before Easter: Tuesday, Wednesday, then Thursday."""
    assert BERLIN.add_business_days(date(2026, 4, 2), 3) == date(2026, 4, 9)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("36h", Duration(36, "hours")),
        ("14d", Duration(14, "days")),
        ("2w", Duration(2, "weeks")),
        ("10 business days", Duration(10, "business_days")),
        ("1 business day", Duration(1, "business_days")),
        (" 3 Days ", Duration(3, "days")),
    ],
)
def test_durations_parse(text: str, expected: Duration) -> None:
    """The duration forms a policy may use parse to amount and unit."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["7", "0d", "-3d", "3 fortnights", "d", "", "1.5d"])
def test_bad_durations_are_rejected(text: str) -> None:
    """Bare numbers, zero, negatives and unknown units are errors that name the accepted forms."""
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text if text != "7" else 7)


def test_a_calendar_without_working_days_is_refused() -> None:
    """A calendar needs at least one working day and hours that start before they end."""
    with pytest.raises(ValueError, match="working day"):
        BusinessCalendar("UTC", days=())
    with pytest.raises(ValueError, match="start before"):
        BusinessCalendar("UTC", start=time(17), end=time(9))
