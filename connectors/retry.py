"""The one retry layer for every CRM call (the SDKs' own retries are switched off).

Retries ``RetryLater`` (429, 5xx, timeouts, dropped connections, lock contention) with exponential backoff
and full jitter, honouring ``retry_after`` when the CRM sent one. ``BudgetExhausted`` is never retried: the
cycle stops and resumes later. Everything else propagates at once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, stop_after_delay

from connectors.errors import BudgetExhausted, RetryLater

T = TypeVar("T")

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RetrySettings:
    attempts: int = 6
    initial_wait: float = 0.5  # seconds
    max_wait: float = 30.0
    max_total: float = 120.0  # give up on one call after this long; the cycle resumes next time
    jitter_seed: int | None = None  # set in tests for reproducible waits


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, RetryLater) and not isinstance(exc, BudgetExhausted)


class _Wait:
    """Exponential backoff with full jitter; a server's ``retry_after`` wins when it is longer."""

    def __init__(self, settings: RetrySettings) -> None:
        self._settings = settings
        self._random = random.Random(settings.jitter_seed)

    def __call__(self, state: RetryCallState) -> float:
        s = self._settings
        ceiling = min(s.max_wait, s.initial_wait * 2 ** (state.attempt_number - 1))
        wait = self._random.uniform(0, ceiling)
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RetryLater) and exc.retry_after is not None:
            wait = max(wait, min(exc.retry_after, s.max_wait))
        return wait


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.warning(
        "crm_retry_scheduled",
        attempt=state.attempt_number,
        wait_s=round(state.next_action.sleep, 3) if state.next_action else None,
        error=type(exc).__name__ if exc else None,
        status=getattr(exc, "status", None),
    )


def call_with_retry(
    fn: Callable[[], T],
    settings: RetrySettings,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn`` until it succeeds, raises a non-retryable error, or the settings give up (re-raising)."""
    retrying = Retrying(
        retry=retry_if_exception(_is_retryable),
        wait=_Wait(settings),
        stop=stop_after_attempt(settings.attempts) | stop_after_delay(settings.max_total),
        sleep=sleep,
        before_sleep=_log_retry,
        reraise=True,
    )
    return retrying(fn)
