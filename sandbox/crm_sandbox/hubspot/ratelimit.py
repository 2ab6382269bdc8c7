"""HubSpot's API limits per token: a rolling 10-second window, a daily budget, search's per-second limit.

Numbers by tier follow the usage guidelines
(https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines): Free/Starter 100 per 10 s
and 250,000 a day, Professional 190 and 625,000, Enterprise 190 and 1,000,000; the API limit increase pack
raises the window to 250 and adds 1,000,000 a day. Search is limited to 5 requests a second and is exempt from
the 10-second window (the spec's ``x-hubspot-rate-limit-exemptions: ["ten-secondly"]``); its responses carry
no ``X-HubSpot-RateLimit-*`` headers, as reported for the real API. The daily budget resets at midnight in the
account's time zone. Time comes from the sandbox clock, so tests move it instead of sleeping.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, replace
from datetime import date
from zoneinfo import ZoneInfo

from crm_sandbox.clock import SandboxClock

__all__ = ["TIERS", "LimitDecision", "RateLimitConfig", "RateLimiter"]

WINDOW_S = 10.0
SEARCH_WINDOW_S = 1.0


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    """Limits per token; ``enabled=False`` switches all of them off (headers too)."""

    enabled: bool = True
    per_ten_seconds: int = 190
    daily: int = 625_000
    search_per_second: int = 5
    retry_after_s: int | None = None  # send Retry-After on 429s (off by default: urllib3 would hide 429s)
    time_zone: str = "UTC"

    @classmethod
    def tier(cls, name: str, *, increase_packs: int = 0) -> RateLimitConfig:
        """The limits of a HubSpot tier: ``free``, ``starter``, ``professional``, ``enterprise``."""
        per_ten, daily = TIERS[name]
        if increase_packs:
            per_ten, daily = 250, daily + 1_000_000 * increase_packs
        return cls(per_ten_seconds=per_ten, daily=daily)

    @classmethod
    def off(cls) -> RateLimitConfig:
        return cls(enabled=False)

    def with_(self, **changes: object) -> RateLimitConfig:
        return replace(self, **changes)  # type: ignore[arg-type]


TIERS: dict[str, tuple[int, int]] = {
    "free": (100, 250_000),
    "starter": (100, 250_000),
    "professional": (190, 625_000),
    "enterprise": (190, 1_000_000),
}


@dataclass(frozen=True, slots=True)
class LimitDecision:
    """Whether a request may go on; when not, which policy refused it. ``headers`` go on the response."""

    allowed: bool
    policy: str | None  # TEN_SECONDLY_ROLLING | DAILY | SECONDLY
    headers: dict[str, str]


class _Usage:
    __slots__ = ("day", "day_count", "search_window", "window")

    def __init__(self) -> None:
        self.window: deque[float] = deque()
        self.search_window: deque[float] = deque()
        self.day: date | None = None
        self.day_count = 0


class RateLimiter:
    """Counts requests per token against a ``RateLimitConfig``; thread-safe."""

    def __init__(self, config: RateLimitConfig, clock: SandboxClock) -> None:
        self.config = config
        self.clock = clock
        self._usage: dict[str, _Usage] = {}
        self._lock = threading.Lock()

    def configure(self, config: RateLimitConfig) -> None:
        with self._lock:
            self.config = config
            self._usage.clear()

    def usage(self, token: str) -> tuple[int, int]:
        """(requests today, requests in the current 10-second window) for ``token``."""
        with self._lock:
            found = self._usage.get(token)
            return (found.day_count, len(found.window)) if found else (0, 0)

    def check(self, token: str, *, search: bool) -> LimitDecision:
        """Admit or refuse one request, counting it when admitted."""
        config = self.config
        if not config.enabled:
            return LimitDecision(True, None, {})
        now = self.clock.monotonic()
        today = self.clock.now().astimezone(ZoneInfo(config.time_zone)).date()
        with self._lock:
            usage = self._usage.setdefault(token, _Usage())
            if usage.day != today:
                usage.day, usage.day_count = today, 0
            _expire(usage.window, now, WINDOW_S)
            _expire(usage.search_window, now, SEARCH_WINDOW_S)
            policy: str | None = None
            if usage.day_count >= config.daily:
                policy = "DAILY"
            elif search and len(usage.search_window) >= config.search_per_second:
                policy = "SECONDLY"
            elif not search and len(usage.window) >= config.per_ten_seconds:
                policy = "TEN_SECONDLY_ROLLING"
            if policy is None:
                usage.day_count += 1
                (usage.search_window if search else usage.window).append(now)
            headers = {} if search else self._headers(usage)
        if policy is not None and config.retry_after_s is not None:
            headers["Retry-After"] = str(config.retry_after_s)
        return LimitDecision(policy is None, policy, headers)

    def _headers(self, usage: _Usage) -> dict[str, str]:
        config = self.config
        return {
            "X-HubSpot-RateLimit-Daily": str(config.daily),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, config.daily - usage.day_count)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(WINDOW_S * 1000)),
            "X-HubSpot-RateLimit-Max": str(config.per_ten_seconds),
            "X-HubSpot-RateLimit-Remaining": str(max(0, config.per_ten_seconds - len(usage.window))),
        }


def _expire(window: deque[float], now: float, span: float) -> None:
    while window and window[0] <= now - span:
        window.popleft()
    # a clock moved backwards (a test set an earlier time) must not leave future entries forever
    while window and window[-1] > now:
        window.pop()


LIMIT_MESSAGES = {
    "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
    "DAILY": "You have reached your daily limit.",
    "SECONDLY": "You have reached your secondly limit.",
}
