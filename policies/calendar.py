"""Business days and working hours in one time zone: where follow-up tasks may fall due.

A task that falls due on a Saturday, on Christmas or at 3 a.m. in the owner's city is noise. Every due date
the engine computes goes through ``BusinessCalendar.working_moment``: the first moment at or after the
ideal one that lies on a business day (a working weekday that is neither a public holiday of the configured
country/subdivision nor a company day off) inside working hours, in the owner's time zone.

Holidays come from the ``holidays`` package, expanded per year on first use and cached on the calendar
object; the results depend only on the configuration, so this memoisation keeps the engine pure. The same
holds for the other memos here (per local date, per moment): they never change an answer.

Arithmetic is bounded (``policies.bounds``): a shift that would leave Python's calendar or pass the horizon
(year 5000) ends at the horizon, and a moment at the very ends of the calendar, where converting it to the
owner's zone would overflow, is read on the UTC clock. So no date a CRM or a snapshot hands the engine makes
it raise; the connectors reject such values before they get here anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Generic, TypeVar
from zoneinfo import ZoneInfo

import holidays

from policies.bounds import HORIZON
from policies.durations import Duration

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
_DAY = timedelta(days=1)
_MEMO_LIMIT = 100_000


def _in_zone(moment: datetime, tz: ZoneInfo) -> datetime:
    """``moment`` in ``tz``; on the UTC clock at the ends of Python's calendar (the conversion overflows)."""
    try:
        return moment.astimezone(tz)
    except OverflowError:
        return moment


class _Memo(dict[K, V], Generic[K, V]):
    """A bounded memo of a pure function: ``memo[key]`` computes the value on first use only.

    A dict subclass with ``__missing__``: a hit is a plain dict lookup, with no Python call at all.
    """

    __slots__ = ("_compute", "_limit")

    def __init__(self, compute: Callable[[K], V], limit: int = _MEMO_LIMIT) -> None:
        super().__init__()
        self._compute = compute
        self._limit = limit

    def __missing__(self, key: K) -> V:
        if len(self) >= self._limit:
            self.clear()
        value = self[key] = self._compute(key)
        return value


class _ByLocalDay(dict[datetime, V], Generic[V]):
    """moment -> what its local date gives; like ``_Memo`` with the conversion inlined in ``__missing__``
    (one Python call per miss: most moments the engine sees, activity times, are seen once)."""

    __slots__ = ("_tz",)

    def __init__(self, tz: ZoneInfo) -> None:
        super().__init__()
        self._tz = tz


class _LocalDates(_ByLocalDay[date]):
    __slots__ = ()

    def __missing__(self, moment: datetime) -> date:
        if len(self) >= _MEMO_LIMIT:
            self.clear()
        value = self[moment] = _in_zone(moment, self._tz).date()
        return value


class _DayNames(_ByLocalDay[str]):
    """The local date as ``YYYY-MM-DD``, the form every explanation shows dates in."""

    __slots__ = ()

    def __missing__(self, moment: datetime) -> str:
        if len(self) >= _MEMO_LIMIT:
            self.clear()
        value = self[moment] = _in_zone(moment, self._tz).date().isoformat()
        return value


class BusinessCalendar:
    """Working days, working hours and holidays of one time zone."""

    __slots__ = (
        "_business_days",
        "_dates",
        "_holiday_years",
        "_holidays",
        "_moments",
        "_openings",
        "country",
        "day_names",
        "days",
        "days_off",
        "end",
        "start",
        "subdivision",
        "tz",
    )

    def __init__(
        self,
        time_zone: str,
        *,
        start: time = time(9, 0),
        end: time = time(17, 0),
        days: Iterable[int] = (0, 1, 2, 3, 4),
        country: str | None = None,
        subdivision: str | None = None,
        days_off: Iterable[date] = (),
    ) -> None:
        if start >= end:
            raise ValueError("working hours must start before they end")
        self.tz = ZoneInfo(time_zone)
        self.start = start
        self.end = end
        self.days = frozenset(days)
        if not self.days:
            raise ValueError("at least one working day is needed")
        self.country = country
        self.subdivision = subdivision
        self.days_off = frozenset(days_off)
        self._holidays: set[date] = set()
        self._holiday_years: set[int] = set()
        # Memos of pure functions of the configuration: the same moments recur across deals ("now",
        # due dates) and so do the same few hundred local dates, and converting time zones is a large
        # share of the engine's work. Bounded.
        self._moments: _Memo[datetime, datetime] = _Memo(self._working_moment)
        # moment -> its local date as YYYY-MM-DD (what ``local_day_name`` returns), read directly by the
        # engine, which shows a date in almost every explanation.
        self.day_names: Mapping[datetime, str] = _DayNames(self.tz)
        self._dates: Mapping[datetime, date] = _LocalDates(self.tz)
        self._business_days: _Memo[date, bool] = _Memo(self._is_business_day)
        self._openings: _Memo[date, datetime] = _Memo(
            lambda day: datetime.combine(day, self.start, self.tz).astimezone(UTC)
        )

    # -- days ------------------------------------------------------------------------------------

    def is_holiday(self, day: date) -> bool:
        if self.country is None:
            return False
        if day.year not in self._holiday_years:
            found = holidays.country_holidays(self.country, subdiv=self.subdivision, years=day.year)
            self._holidays.update(found.keys())
            self._holiday_years.add(day.year)
        return day in self._holidays

    def is_business_day(self, day: date) -> bool:
        return self._business_days[day]

    def _is_business_day(self, day: date) -> bool:
        return day.weekday() in self.days and day not in self.days_off and not self.is_holiday(day)

    def business_day_on_or_after(self, day: date) -> date:
        # A year of non-working days in a row cannot happen with a valid configuration; the bound keeps
        # a broken one from looping forever.
        for _ in range(400):
            if self.is_business_day(day):
                return day
            day += _DAY
        raise ValueError("no business day within 400 days: check working days and days off")

    def next_business_day(self, day: date) -> date:
        return self.business_day_on_or_after(day + _DAY)

    def add_business_days(self, day: date, count: int) -> date:
        business = self._business_days  # the same steps as ``next_business_day``, without a call per day
        for _ in range(count):
            for _ in range(400):
                day += _DAY
                if business[day]:
                    break
            else:
                raise ValueError("no business day within 400 days: check working days and days off")
        return day

    # -- moments ---------------------------------------------------------------------------------

    def local(self, moment: datetime) -> datetime:
        return _in_zone(moment, self.tz)

    def local_date(self, moment: datetime) -> date:
        return self._dates[moment]

    def opening(self, day: date) -> datetime:
        """The start of working hours on ``day``, in UTC."""
        return self._openings[day]

    def local_day_name(self, moment: datetime) -> str:
        """The local date of ``moment`` as ``YYYY-MM-DD``: how evidence and texts show dates."""
        return self.day_names[moment]

    def working_moment(self, moment: datetime) -> datetime:
        """The first moment at or after ``moment`` on a business day inside working hours, in UTC."""
        return self._moments[moment]

    def _working_moment(self, moment: datetime) -> datetime:
        if moment >= HORIZON:
            return HORIZON
        try:
            return self._working_moment_within(moment)
        except OverflowError:  # at the ends of Python's calendar: no working hours to move into
            return moment

    def _working_moment_within(self, moment: datetime) -> datetime:
        local = moment.astimezone(self.tz)
        day = local.date()
        if self._business_days[day]:
            clock = local.time()  # naive: ``time()`` drops the zone (``timetz()`` would keep it)
            if clock < self.start:
                return self._openings[day]
            if clock <= self.end:
                return (local.replace(microsecond=0) if local.microsecond else local).astimezone(UTC)
        return self._openings[self.next_business_day(day)]

    def is_working_moment(self, moment: datetime) -> bool:
        local = _in_zone(moment, self.tz)
        clock = local.time()
        return self.is_business_day(local.date()) and self.start <= clock <= self.end

    def shift(self, moment: datetime, duration: Duration) -> datetime:
        """``moment`` plus ``duration``: days and weeks on the local wall clock, business days skipping
        non-business days; not yet adjusted into working hours (``due_after`` does that). Bounded: past
        the horizon (or past Python's calendar) the result is the horizon."""
        try:
            if duration.unit == "hours":
                shifted = moment + timedelta(hours=duration.amount)
            else:
                local = moment.astimezone(self.tz)
                if duration.unit == "business_days":
                    day = self.add_business_days(local.date(), duration.amount)
                    # time(): the naive clock
                    shifted = datetime.combine(day, local.time(), self.tz).astimezone(UTC)
                else:
                    # Aware arithmetic keeps the wall clock; converting back applies the right offset.
                    shifted = (local + duration.delta).astimezone(UTC)
        except OverflowError:
            return HORIZON
        return shifted if shifted < HORIZON else HORIZON

    def passed(self, reference: datetime, duration: Duration, now: datetime) -> bool:
        """Whether ``duration`` has elapsed between ``reference`` and ``now``: a threshold, not a due date.

        Calendar units compare elapsed time (a DST hour does not decide whether a deal is dead); business
        days count business days.
        """
        if duration.unit == "business_days":
            return self.shift(reference, duration) <= now
        return now - reference >= duration.delta

    def threshold(self, reference: datetime, duration: Duration) -> datetime:
        """The first moment at which ``passed(reference, duration, now)`` holds: the same arithmetic,
        solved for ``now`` (the backtest asks when a time-based rule can next fire)."""
        if duration.unit == "business_days":
            return self.shift(reference, duration)
        return reference + duration.delta

    def due_after(self, moment: datetime, duration: Duration) -> datetime:
        """When a task ``duration`` after ``moment`` is due: shifted, then moved into working hours."""
        return self.working_moment(self.shift(moment, duration))
