"""429 storms against the HubSpot sandbox: one retry layer, whose logged waits are the only waits.

The sandbox's fault sequence is seeded: with ``STORM`` the first request starts a storm of eight 429s and
the requests after it pass (each test checks that precondition through the sandbox's fault counts). The
client's monotonic clock and sleep are one fake, so every wait anybody makes (the retry layer, the rate
limiter) lands in ``FakeClock.slept`` and nothing really sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from crm_sandbox.faults import FaultConfig
from crm_sandbox.hubspot import HubSpotSandbox, RateLimitConfig, running_hubspot_sandbox
from hubspot import HubSpot

import connectors.hubspot.limits
import connectors.retry
from connectors.errors import RateLimited
from connectors.hubspot.auth import StaticToken
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.limits import LimiterSettings, RateLimiter
from connectors.retry import RetrySettings
from tests.log_capture import captured_events

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
STORM = FaultConfig(rate_limit_storm=0.05, rate_limit_burst=8, seed=31)  # request 1 starts 8 x 429
WAIT_EVENTS = ("crm_retry_scheduled", "crm_throttled")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture(scope="module")
def hs() -> Iterator[HubSpotSandbox]:
    with running_hubspot_sandbox(seed=5, deals=10, now=NOW, rate_limits=RateLimitConfig.off()) as sandbox:
        yield sandbox


def client_for(hs: HubSpotSandbox, fake: FakeClock, retry: RetrySettings) -> HubSpotClient:
    """The client exactly as the connector builds it (SDK with urllib3 retries off), on the fake clock."""
    limiter = RateLimiter(LimiterSettings(), clock=fake.monotonic, sleep=fake.sleep)
    return HubSpotClient(hs.base_url, StaticToken(hs.access_token), limiter, retry, sleep=fake.sleep)


def storm(hs: HubSpotSandbox, faults: FaultConfig) -> None:
    hs.control.set_faults(faults)  # restarts the seeded sequence
    hs.control.reset_stats()


def test_a_storm_longer_than_the_attempts_is_ridden_out_and_every_wait_is_logged(
    hs: HubSpotSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight 429s in a row (attempts=3): the call succeeds; what was slept is exactly what was logged.

    Before: each 429 also paused the limiter for HubSpot's 10 s window while the log said the capped
    0.2 s, and the storm outlasted the attempts (the cycle ended retry_later, nothing written).
    """
    storm(hs, STORM)
    fake = FakeClock()
    client = client_for(hs, fake, RetrySettings(attempts=3, max_wait=0.2, jitter_seed=1))
    with captured_events(monkeypatch, connectors.retry, connectors.hubspot.limits) as logs:
        response = client.send("owners.list", "owners", "get_page", limit=10)
    assert response.status == 200
    assert hs.control.stats()["faults"]["rate_limited"] == 8
    waits = [e for e in logs if e["event"] in WAIT_EVENTS]
    assert fake.slept == pytest.approx([e["wait_s"] for e in waits], abs=1e-3)
    assert [(e["event"], e["reason"]) for e in waits] == [("crm_retry_scheduled", "rate_limit_window")] * 8
    assert fake.slept == [0.2] * 8  # the 10 s window, capped at max_wait
    assert client.calls["owners.list"] == 9


def test_retry_after_is_honoured_as_sent(hs: HubSpotSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the sandbox sending Retry-After: 3, every wait is 3 s (not capped by max_wait 0.2)."""
    storm(hs, FaultConfig(rate_limit_storm=0.05, rate_limit_burst=8, seed=31, retry_after_s=3))
    fake = FakeClock()
    client = client_for(hs, fake, RetrySettings(attempts=3, max_wait=0.2, jitter_seed=1))
    with captured_events(monkeypatch, connectors.retry, connectors.hubspot.limits) as logs:
        assert client.send("owners.list", "owners", "get_page", limit=10).status == 200
    assert fake.slept == [3.0] * 8
    assert {e["reason"] for e in logs if e["event"] == "crm_retry_scheduled"} == {"retry_after"}


def test_the_sdks_own_urllib3_retry_is_off_ours_is_the_only_retry_layer(
    hs: HubSpotSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GET 429 with Retry-After: left alone, urllib3 inside the SDK retries it silently; ours never does.

    The SDK as HubSpot's README builds it sends 4 requests for one call and reports success without a
    trace; the client the connector builds sends one request per attempt of our retry layer, each logged.
    """
    with_header = FaultConfig(rate_limit_storm=0.05, rate_limit_burst=3, seed=31, retry_after_s=0)
    storm(hs, with_header)
    default_sdk = HubSpot(access_token=hs.access_token, host=hs.base_url)
    default_sdk.crm.owners.owners_api.get_page(limit=1)  # no error: the three 429s were swallowed
    assert hs.control.stats()["total"] == 4

    storm(hs, with_header)
    fake = FakeClock()
    client = client_for(hs, fake, RetrySettings(attempts=3, jitter_seed=1))
    with pytest.raises(RateLimited):
        client.send_once("owners.list", "owners", "get_page", limit=1)
    assert hs.control.stats()["total"] == 1  # one request, the 429 handed to us as it is

    storm(hs, with_header)
    with captured_events(monkeypatch, connectors.retry, connectors.hubspot.limits) as logs:
        assert client.send("owners.list", "owners", "get_page", limit=1).status == 200
    retries = [e for e in logs if e["event"] == "crm_retry_scheduled"]
    assert hs.control.stats()["total"] == 1 + len(retries) == 4
