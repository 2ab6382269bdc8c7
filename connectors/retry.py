"""The one retry layer for every CRM call (the SDKs' own retries are switched off).

``call_with_retry`` retries ``RetryLater`` and sleeps between attempts. Each wait is decided in one place
(``next_wait``), logged as ``crm_retry_scheduled`` with its reason *before* it is slept, and slept exactly:
nothing else waits on a failed call, so the log tells the whole truth about where a cycle's time went.

Reasons, in order of precedence:

* ``retry_after``: the CRM said how long (a ``Retry-After`` header); honoured as sent, also when it exceeds
  ``max_wait``.
* ``rate_limit_window``: a rate limit without ``Retry-After`` (``RateLimited.window``: HubSpot's 10-second
  window, its search limit's second), capped at ``max_wait``.
* ``backoff``: any other transient failure (5xx, timeouts, dropped connections, lock contention):
  exponential backoff with full jitter, ``uniform(0, min(max_wait, initial_wait * 2 ** (n - 1)))``.

When to give up (the error is re-raised; the cycle ends ``retry_later`` and resumes next time, keeping what
it achieved): after ``attempts`` transient failures, after ``rate_limit_attempts`` rate-limited ones (a
storm of 429s is the CRM asking us to slow down, not a fault, so it has its own, larger allowance), or when
the next wait would take the call's total waiting past ``max_total``; that last one is logged as
``crm_retry_abandoned`` with the wait the CRM asked for. ``BudgetExhausted`` is never retried. Everything
else propagates at once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

import structlog
from pydantic import BaseModel, ConfigDict, Field
from tenacity import RetryCallState, Retrying, retry_if_exception

from connectors.errors import BudgetExhausted, RateLimited, RetryLater

T = TypeVar("T")

log = structlog.get_logger(__name__)

WaitReason = Literal["retry_after", "rate_limit_window", "backoff"]


class RetrySettings(BaseModel):
    """The knobs of the retry layer: the ``retry:`` block of a connector's settings section, as it is."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    attempts: int = Field(default=6, ge=1, le=20)  # tries of a call on 5xx, timeouts, dropped connections
    rate_limit_attempts: int = Field(default=30, ge=1, le=200)  # tries while the CRM answers "rate limited"
    initial_wait: float = Field(default=0.5, ge=0, le=3600)  # seconds: the first backoff's ceiling
    # the longest backoff or rate-limit window wait (a Retry-After is honoured as sent)
    max_wait: float = Field(default=30.0, ge=0, le=3600)
    # the most one call may spend waiting; then the cycle stops and resumes next time
    max_total: float = Field(default=120.0, gt=0, le=86_400)
    jitter_seed: int | None = None  # set in tests for reproducible waits


@dataclass(frozen=True, slots=True)
class Wait:
    """How long to wait before the next attempt, and why."""

    seconds: float
    reason: WaitReason


def next_wait(error: RetryLater, failures: int, settings: RetrySettings, rng: random.Random) -> Wait:
    """The wait after the ``failures``-th failed attempt of a call that failed with ``error``."""
    if error.retry_after is not None:
        return Wait(max(0.0, error.retry_after), "retry_after")
    if isinstance(error, RateLimited) and error.window is not None:
        return Wait(max(0.0, min(error.window, settings.max_wait)), "rate_limit_window")
    ceiling = min(settings.max_wait, settings.initial_wait * 2 ** (failures - 1))
    return Wait(rng.uniform(0, max(0.0, ceiling)), "backoff")


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, RetryLater) and not isinstance(exc, BudgetExhausted)


class _CallPolicy:
    """The waits and the stop decision of one ``call_with_retry``; tenacity asks it after each failure."""

    def __init__(self, settings: RetrySettings) -> None:
        self._settings = settings
        self._random = random.Random(settings.jitter_seed)
        self._transient = 0
        self._rate_limited = 0
        self._waited = 0.0
        self._next: Wait | None = None

    @staticmethod
    def _error(state: RetryCallState) -> RetryLater:
        exc = state.outcome.exception() if state.outcome else None
        assert isinstance(exc, RetryLater)  # only retryable errors reach wait and stop
        return exc

    def wait(self, state: RetryCallState) -> float:
        error = self._error(state)
        if isinstance(error, RateLimited):
            self._rate_limited += 1
        else:
            self._transient += 1
        self._next = next_wait(error, state.attempt_number, self._settings, self._random)
        return self._next.seconds

    def stop(self, state: RetryCallState) -> bool:
        s, upcoming = self._settings, self._next
        assert upcoming is not None
        if self._transient >= s.attempts or self._rate_limited >= s.rate_limit_attempts:
            return True
        if self._waited + upcoming.seconds > s.max_total:
            self._log("crm_retry_abandoned", state, waited_s=round(self._waited, 3), max_total_s=s.max_total)
            return True
        return False

    def before_sleep(self, state: RetryCallState) -> None:
        upcoming = self._next
        assert upcoming is not None
        self._waited += upcoming.seconds
        self._log("crm_retry_scheduled", state)

    def _log(self, event: str, state: RetryCallState, **extra: object) -> None:
        """A warning about the upcoming wait after ``state``'s failure: attempt, wait, why, the error."""
        upcoming, error = self._next, self._error(state)
        assert upcoming is not None
        log.warning(
            event,
            attempt=state.attempt_number,
            wait_s=round(upcoming.seconds, 3),
            reason=upcoming.reason,
            **extra,
            error=type(error).__name__,
            status=error.status,
        )


def call_with_retry(
    fn: Callable[[], T],
    settings: RetrySettings,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn`` until it succeeds, raises a non-retryable error, or the settings give up (re-raising)."""
    policy = _CallPolicy(settings)
    retrying = Retrying(
        retry=retry_if_exception(_is_retryable),
        wait=policy.wait,
        stop=policy.stop,
        sleep=sleep,
        before_sleep=policy.before_sleep,
        reraise=True,
    )
    return retrying(fn)
