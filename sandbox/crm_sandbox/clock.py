"""The sandbox's notion of "now", which tests can pin or move.

Token expiry, relative SOQL date literals (``LAST_N_DAYS:7``), ``createdate``/``LastModifiedDate`` stamps and
rolling rate-limit windows all read ``SandboxClock.now()`` instead of the system clock, so a test can set the
time (``POST /__sandbox__/clock``, or ``SandboxControl.set_clock``) and get reproducible answers.

    clock = SandboxClock()                 # real time
    clock.set(datetime(2026, 1, 5, 9, tzinfo=UTC))           # frozen at that instant
    clock.set(datetime(2026, 1, 5, 9, tzinfo=UTC), ticking=True)  # starts there, then runs on
    clock.set(None)                        # back to real time
    clock.now()                            # always timezone-aware UTC

Thread-safe: handlers may run in uvicorn's loop thread while a test thread sets the time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

__all__ = ["SandboxClock"]


def _system_now() -> datetime:
    return datetime.now(UTC)


class SandboxClock:
    """Real time by default; frozen or shifted when a test says so."""

    def __init__(self, system_now: Callable[[], datetime] = _system_now) -> None:
        self._system_now = system_now
        self._lock = threading.Lock()
        self._frozen: datetime | None = None
        self._offset = timedelta(0)

    def now(self) -> datetime:
        """The current sandbox time, timezone-aware UTC."""
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            offset = self._offset
        return self._system_now() + offset

    def monotonic(self) -> float:
        """Seconds on a clock that follows ``now()``: what rolling rate-limit windows should count with.

        When the clock is real this is ``time.monotonic()`` shifted by the offset, so it never jumps
        backwards because the wall clock was adjusted; when frozen it is the frozen instant's timestamp.
        """
        with self._lock:
            if self._frozen is not None:
                return self._frozen.timestamp()
            offset = self._offset
        return time.monotonic() + offset.total_seconds()

    def set(self, when: datetime | None, *, ticking: bool = False) -> None:
        """Pin the time to ``when`` (or start from it and run on, when ``ticking``); ``None`` = real time."""
        if when is not None and when.tzinfo is None:
            raise ValueError("the sandbox clock needs a timezone-aware datetime")
        with self._lock:
            if when is None:
                self._frozen, self._offset = None, timedelta(0)
            elif ticking:
                self._frozen, self._offset = None, when - self._system_now()
            else:
                self._frozen, self._offset = when.astimezone(UTC), timedelta(0)

    @property
    def is_real(self) -> bool:
        """True when nobody has set the time."""
        with self._lock:
            return self._frozen is None and not self._offset

    @property
    def is_frozen(self) -> bool:
        """True when the time stands still at a set instant."""
        with self._lock:
            return self._frozen is not None
