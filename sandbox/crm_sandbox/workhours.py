"""Turns the stories' "days before today" into timestamps inside an owner's working hours.

Used by the dataset generator (sandbox/generator.py): a sales rep's calls, emails and meetings happen on
weekdays, between the owner's ``working_start`` and ``working_end`` in the owner's time zone. The UTC
offset of each zone is taken as at the dataset's ``now`` (one offset per owner keeps the per-activity cost
to integer arithmetic; history from the other side of a daylight-saving change is one hour off, which no
consumer of the data can tell from a rep starting early). Everything is in epoch seconds; the generator
turns them into datetimes.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from crm_sandbox.dataset import GenOwner

__all__ = ["WorkingHoursClock"]

_DAY = 86_400
_THURSDAY = 3  # 1970-01-01, day 0 of the epoch, was a Thursday (Monday = 0)


def _seconds(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 3600 + int(minutes) * 60


class WorkingHoursClock:
    """Epoch-second moments relative to ``now``, in each owner's working hours, Monday to Friday."""

    def __init__(self, rng: random.Random, now: datetime, owners: tuple[GenOwner, ...]) -> None:
        self.rng = rng
        self.now_ts = int(now.timestamp())
        self.today_start = self.now_ts - self.now_ts % _DAY
        self.today_index = self.today_start // _DAY
        self.windows: dict[int, tuple[int, int, int]] = {}  # owner id -> (start s, end s, utc offset s)
        for owner in owners:
            offset = now.astimezone(ZoneInfo(owner.time_zone)).utcoffset() or timedelta(0)
            start, end = _seconds(owner.working_start), _seconds(owner.working_end)
            self.windows[owner.id] = (start, end, int(offset.total_seconds()))

    def at(self, day: int, owner_id: int) -> int:
        """A working-hours moment ``day`` days before today (negative: in the future).

        Weekend days move to the Friday before (past) or the Monday after (future). A past moment that
        would fall later today than ``now`` moves to the previous working day.
        """
        weekday = (self.today_index - day + _THURSDAY) % 7
        if weekday >= 5:
            day += (weekday - 4) if day >= 0 else -(7 - weekday)
        start, end, offset = self.windows[owner_id]
        ts = self.today_start - day * _DAY + start + int(self.rng.random() * (end - start)) - offset
        if day >= 0 and ts >= self.now_ts:
            return self.at(day + 1, owner_id)
        return ts

    def date_in(self, days: int) -> date:
        """Today's UTC date plus ``days``."""
        return date.fromordinal(date(1970, 1, 1).toordinal() + self.today_index + days)
