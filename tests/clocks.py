"""Clocks a connector or a limiter is handed in tests: nothing sleeps for real, every wait is recorded."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypedDict


class Clocks(TypedDict):
    """The clock keywords of ``build_hubspot_connector`` and ``build_salesforce_connector``."""

    now: Callable[[], datetime]
    monotonic: Callable[[], float]
    sleep: Callable[[float], None]


class FakeTime:
    """A monotonic clock that moves only when somebody sleeps on it, and a wall clock to go with it.

    ``now`` is ``wall`` when one is given, else the real time; either way it moves on by what was slept,
    so a limiter's or retry layer's waits pass in both clocks at once without taking any real time.
    """

    def __init__(self, wall: datetime | None = None) -> None:
        self.wall = wall
        self.monotonic_s = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.monotonic_s

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.monotonic_s += seconds

    def now(self) -> datetime:
        base = self.wall if self.wall is not None else datetime.now(UTC)
        return base + timedelta(seconds=sum(self.slept))

    def clocks(self) -> Clocks:
        """The ``now``, ``monotonic`` and ``sleep`` keywords of ``build_…_connector``."""
        return Clocks(now=self.now, monotonic=self.monotonic, sleep=self.sleep)
