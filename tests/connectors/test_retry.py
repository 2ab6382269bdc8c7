"""The one retry layer: each wait decided once, logged with its reason, slept exactly; when it gives up."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

import connectors.retry
from connectors.errors import BudgetExhausted, RateLimited, RetryLater
from connectors.retry import RetrySettings, call_with_retry
from tests.log_capture import captured_events


class Failing:
    """A call that raises ``errors`` one after the other, then answers "done"; counts its attempts."""

    def __init__(self, *errors: Exception) -> None:
        self._pending: Iterator[Exception] = iter(errors)
        self.attempts = 0

    def __call__(self) -> str:
        self.attempts += 1
        error = next(self._pending, None)
        if error is not None:
            raise error
        return "done"


def failing(*errors: Exception) -> Failing:
    return Failing(*errors)


def scheduled(logs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [e for e in logs if e["event"] == "crm_retry_scheduled"]


def test_each_wait_is_logged_with_its_reason_and_slept_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry-After is honoured as sent (beyond max_wait), a rate-limit window is capped, others back off."""
    call = failing(
        RateLimited("limited", retry_after=45.0, window=10.0, status=429),
        RateLimited("limited", window=10.0, status=429),
        RetryLater("unavailable", status=503),
    )
    slept: list[float] = []
    with captured_events(monkeypatch, connectors.retry) as logs:
        result = call_with_retry(call, RetrySettings(max_wait=2.0, jitter_seed=3), sleep=slept.append)
    assert result == "done"
    waits = scheduled(logs)
    assert [e["reason"] for e in waits] == ["retry_after", "rate_limit_window", "backoff"]
    assert [e["wait_s"] for e in waits] == [round(s, 3) for s in slept]
    assert slept[:2] == [45.0, 2.0]
    assert 0 <= slept[2] <= 2.0
    assert [(e["error"], e["status"]) for e in waits] == [
        ("RateLimited", 429),
        ("RateLimited", 429),
        ("RetryLater", 503),
    ]


def test_a_storm_of_429s_longer_than_the_attempts_is_ridden_out() -> None:
    """Eight 429s in a row with attempts=3: rate limits have their own allowance, the call succeeds."""
    call = failing(*[RateLimited("limited", window=10.0, status=429) for _ in range(8)])
    slept: list[float] = []
    settings = RetrySettings(attempts=3, max_wait=0.5, jitter_seed=1)
    assert call_with_retry(call, settings, sleep=slept.append) == "done"
    assert slept == [0.5] * 8


def test_transient_failures_and_rate_limits_each_stop_at_their_allowance() -> None:
    """Five 5xx with attempts=3 give up after three tries; 429s stop at rate_limit_attempts."""
    transient = failing(*[RetryLater("down", status=503) for _ in range(5)])
    with pytest.raises(RetryLater):
        call_with_retry(transient, RetrySettings(attempts=3, jitter_seed=1), sleep=lambda _: None)
    assert transient.attempts == 3
    limited = failing(*[RateLimited("limited", window=1.0) for _ in range(9)])
    with pytest.raises(RateLimited):
        call_with_retry(limited, RetrySettings(rate_limit_attempts=4), sleep=lambda _: None)
    assert limited.attempts == 4


def test_a_wait_past_the_time_budget_gives_up_at_once_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Retry-After that does not fit in max_total is not shortened: the call gives up without waiting."""
    call = failing(RateLimited("limited", retry_after=500.0, status=429))
    slept: list[float] = []
    with captured_events(monkeypatch, connectors.retry) as logs, pytest.raises(RateLimited):
        call_with_retry(call, RetrySettings(max_total=120.0), sleep=slept.append)
    assert slept == []
    abandoned = [e for e in logs if e["event"] == "crm_retry_abandoned"]
    assert [(e["wait_s"], e["reason"], e["max_total_s"]) for e in abandoned] == [
        (500.0, "retry_after", 120.0)
    ]


def test_the_time_budget_counts_the_waits_already_made() -> None:
    """Waits add up against max_total: 3 x 40 s fit in 120 s, a fourth does not."""
    call = failing(*[RateLimited("limited", retry_after=40.0) for _ in range(5)])
    slept: list[float] = []
    with pytest.raises(RateLimited):
        call_with_retry(call, RetrySettings(max_total=120.0), sleep=slept.append)
    assert slept == [40.0, 40.0, 40.0]


def test_budget_exhausted_is_never_retried() -> None:
    """The daily budget is spent: the cycle must stop, not wait."""
    call = failing(BudgetExhausted("spent"))
    slept: list[float] = []
    with pytest.raises(BudgetExhausted):
        call_with_retry(call, RetrySettings(), sleep=slept.append)
    assert slept == []
    assert call.attempts == 1
