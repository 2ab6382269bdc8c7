"""Client-side rate limiting: stay under HubSpot's limits instead of bouncing off them.

Three budgets, all enforced before a request is sent (HubSpot's usage guidelines,
https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines, and its search docs,
https://developers.hubspot.com/docs/api/crm/search):

* the per-app rolling 10-second window (100 on Starter, 190 on Professional/Enterprise). HubSpot's
  ``X-HubSpot-RateLimit-Remaining`` says how much of it is left; what it misses beyond our own calls in the
  window is another process of the same app spending from it. While the answers show nobody else, the
  limiter uses the whole window; before the first answer, and for a window's length after others were
  seen, it keeps ``headroom`` (the ``ten_second_headroom`` setting, 0.9) of it and pauses when HubSpot's
  remaining count falls below the rest. A call counts in our window from its answer, not from its
  sending: HubSpot counts it at its arrival, somewhere between the two, so a call sent when our window
  has room finds room in HubSpot's too, whatever the network's delays (counting from the sending, a call
  that travelled faster than the one it replaces in the window would be refused: hence the fixed margin
  this replaces);
* the search endpoints' own limit (five per second per account; we default to four), outside the 10 s window;
* crm-followup's share of the portal's daily limit, counting the calls earlier cycles made today
  (``prior``: the worker reads them from the state store, whichever process ran them): once our share
  is spent, or HubSpot's
  ``X-HubSpot-RateLimit-Daily-Remaining`` says only the other integrations' part is left, ``acquire`` raises
  ``BudgetExhausted`` with the next reset (midnight in the account's time zone), so the cycle stops cleanly.

Every wait ``acquire`` makes is logged (``crm_throttled``, debug level: it is routine pacing) with its
reason: ``rate_limit_window`` (our share of the 10-second window is used up), ``search_rate`` (the
search limit) or ``shared_window`` (HubSpot's ``X-HubSpot-RateLimit-Remaining`` says another process of
the app spends from the window). A refused call (429) does not pause the limiter: the retry layer
(connectors/retry.py) waits after it, and logs that wait.

Time comes from an injected monotonic ``clock`` and ``sleep`` and the wall ``now``, so tests never wait.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import structlog

from connectors.base import PriorUsage, no_prior_usage
from connectors.errors import BudgetExhausted

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class LimiterSettings:
    ten_second_limit: int = 100
    daily_limit: int = 250_000
    daily_share: float = 0.5
    headroom: float = 0.9
    search_per_second: float = 4.0
    account_time_zone: str = "UTC"


class _Window:
    """A rolling window of calls: at most ``capacity`` in any ``seconds``, each counted from its answer."""

    def __init__(self, capacity: int, seconds: float) -> None:
        self.capacity = max(1, capacity)
        self.seconds = seconds
        self._sent: deque[float] = deque()

    def count(self, now: float) -> int:
        while self._sent and now - self._sent[0] >= self.seconds:
            self._sent.popleft()
        return len(self._sent)

    def wait_needed(self, now: float, capacity: int | None = None) -> float:
        if self.count(now) < max(1, capacity or self.capacity):
            return 0.0
        return self._sent[0] + self.seconds - now

    def record(self, now: float) -> None:
        self._sent.append(now)

    def answered(self, now: float) -> None:
        """The newest call was answered at ``now``: it counts from then (a later time only ever waits
        longer, so calls from several threads stay safe)."""
        if self._sent and self._sent[-1] < now:
            self._sent[-1] = now


class RateLimiter:
    """Decides when the next request may go out, and whether crm-followup may spend any more today."""

    def __init__(
        self,
        settings: LimiterSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        prior: PriorUsage = no_prior_usage,
    ) -> None:
        self._settings = settings
        self._prior = prior
        self._spent_before: int | None = None  # by earlier cycles today, read at the first check of a day
        self._clock = clock
        self._sleep = sleep
        self._now = now
        self._ten = _Window(settings.ten_second_limit, 10.0)
        self._kept = max(1, int(settings.ten_second_limit * settings.headroom))  # while shared or unknown
        self._alone_from: float | None = None  # since when HubSpot's answers show nobody else in the window
        per_second = max(1, int(settings.search_per_second))
        self._search = _Window(per_second, 1.0 * per_second / settings.search_per_second)
        self._tz = ZoneInfo(settings.account_time_zone)
        self._day = self._today()
        self._spent_today = 0
        self.daily_remaining: int | None = None  # as HubSpot last reported it
        self.daily_limit_reported: int | None = None
        self._pause_until = 0.0
        self._last: _Window | None = None  # the window the newest call was counted in
        self._sent_at = 0.0  # when the newest call was sent
        self.waited_seconds = 0.0

    @property
    def our_daily_allowance(self) -> int:
        return int(self._settings.daily_limit * self._settings.daily_share)

    @property
    def spent_today(self) -> int:
        """Calls made today on the account: by earlier cycles (``prior``) and by this connector."""
        return (self._spent_before or 0) + self._spent_today

    def _midnight(self) -> datetime:
        local = self._now().astimezone(self._tz)
        return datetime.combine(local.date(), datetime.min.time(), tzinfo=self._tz).astimezone(UTC)

    def _today(self) -> str:
        return self._now().astimezone(self._tz).date().isoformat()

    def _next_reset(self) -> datetime:
        local = self._now().astimezone(self._tz)
        midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tzinfo=self._tz)
        return midnight.astimezone(UTC)

    def _check_daily(self) -> None:
        today = self._today()
        if today != self._day:
            self._day, self._spent_today, self.daily_remaining = today, 0, None
            self._spent_before = None
        if self._spent_before is None:
            self._spent_before = self._prior(self._midnight())
        limit = self.daily_limit_reported or self._settings.daily_limit
        others = int(limit * (1 - self._settings.daily_share))
        if self.spent_today >= self.our_daily_allowance or (
            self.daily_remaining is not None and self.daily_remaining <= others
        ):
            raise BudgetExhausted(
                f"crm-followup's share ({self._settings.daily_share:.0%}) of the HubSpot daily API limit "
                f"is spent ({self.spent_today} calls on this account today); resuming after the reset",
                resume_at=self._next_reset(),
            )

    def acquire(self, *, search: bool = False) -> None:
        """Block until a request may be sent; raise ``BudgetExhausted`` when today's share is spent."""
        self._check_daily()
        while True:
            now = self._clock()
            alone = self._alone_from is not None and now >= self._alone_from
            capacity = self._ten.capacity if alone else self._kept
            waits = {
                "shared_window": self._pause_until - now,
                "rate_limit_window": 0.0 if search else self._ten.wait_needed(now, capacity),
                "search_rate": self._search.wait_needed(now) if search else 0.0,
            }
            reason = max(waits, key=lambda k: waits[k])
            wait = waits[reason]
            if wait <= 0:
                break
            log.debug("crm_throttled", wait_s=round(wait, 3), reason=reason, search=search)
            self.waited_seconds += wait
            self._sleep(wait)
        now = self._clock()
        self._last = self._search if search else self._ten
        self._last.record(now)
        self._sent_at = now
        self._spent_today += 1

    def observe(self, headers: Mapping[str, str] | None, *, refused: bool = False) -> None:
        """Take HubSpot's own view of the budgets from a response's ``X-HubSpot-RateLimit-*`` headers.

        ``refused``: the headers of a failed call; only the daily counts are taken (after a 429 the retry
        layer waits the window out, the limiter must not add a pause of its own). Called after every call,
        answered or failed, headers or not: the call counts in our window from now.
        """
        now = self._clock()
        if self._last is not None:
            self._last.answered(now)
            self._last = None
        if not headers:
            return
        headers = {str(k).lower(): v for k, v in headers.items()}  # header names are case-insensitive
        daily_remaining = _int(headers.get("x-hubspot-ratelimit-daily-remaining"))
        if daily_remaining is not None:
            self.daily_remaining = daily_remaining
        daily = _int(headers.get("x-hubspot-ratelimit-daily"))
        if daily is not None:
            self.daily_limit_reported = daily
        remaining = _int(headers.get("x-hubspot-ratelimit-remaining"))
        interval_ms = _int(headers.get("x-hubspot-ratelimit-interval-milliseconds")) or 10_000
        maximum = _int(headers.get("x-hubspot-ratelimit-max"))
        if remaining is not None and not refused:
            limit = maximum or self._settings.ten_second_limit
            # HubSpot counted the window at the call's arrival, after its sending; ours count from their
            # answers, after their arrivals: counted as of the sending, ours are never fewer than HubSpot
            # holds of them, so ``others`` never takes our own calls for somebody else's.
            others = limit - remaining - self._ten.count(self._sent_at)
            if others > 0:  # somebody else spends from the window: keep the headroom for a window's length
                self._alone_from = now + interval_ms / 1000
            elif self._alone_from is None:
                self._alone_from = now
            reserve = max(1, int(limit * (1 - self._settings.headroom)))
            if remaining < reserve and others > 0:
                # Give the others back a slice of time per missing request.
                per_request = interval_ms / 1000 / max(1, limit)
                self._pause_until = max(self._pause_until, now + per_request * (reserve - remaining))


def _int(value: object) -> int | None:
    if value is None:
        return None
    try:
        return int(str(value))
    except ValueError:
        return None
