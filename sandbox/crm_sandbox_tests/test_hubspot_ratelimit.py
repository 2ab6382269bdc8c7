"""API limits (10-second window, daily budget, search per second), their headers and 429 bodies, and
faults."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from crm_sandbox.faults import FaultConfig
from crm_sandbox.hubspot import HubSpotSandbox, RateLimitConfig, running_hubspot_sandbox
from hubspot import HubSpot
from hubspot.crm.deals import ApiException, PublicObjectSearchRequest

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
LIMITS = RateLimitConfig(per_ten_seconds=5, daily=1_000, search_per_second=2)


@pytest.fixture
def hs() -> Iterator[HubSpotSandbox]:
    with running_hubspot_sandbox(seed=2, deals=20, now=NOW, rate_limits=LIMITS) as sandbox:
        sandbox.control.set_clock(NOW)  # frozen: windows only move when the test moves the clock
        yield sandbox


def _get(hs: HubSpotSandbox, path: str = "/crm/v3/objects/deals?limit=1") -> requests.Response:
    return requests.get(
        hs.base_url + path, headers={"Authorization": f"Bearer {hs.access_token}"}, timeout=10
    )


def _search(hs: HubSpotSandbox) -> requests.Response:
    return requests.post(
        f"{hs.base_url}/crm/v3/objects/deals/search",
        json={"limit": 1},
        headers={"Authorization": f"Bearer {hs.access_token}"},
        timeout=10,
    )


def test_ten_second_window_headers_then_429_then_recovery(hs: HubSpotSandbox) -> None:
    """Headers count down the window; the request over the limit gets HubSpot's 429; 10 s later calls pass
    again."""
    remaining = [int(_get(hs).headers["X-HubSpot-RateLimit-Remaining"]) for _ in range(5)]
    assert remaining == [4, 3, 2, 1, 0]
    refused = _get(hs)
    assert refused.status_code == 429
    body = refused.json()
    assert (body["status"], body["errorType"], body["policyName"]) == (
        "error",
        "RATE_LIMIT",
        "TEN_SECONDLY_ROLLING",
    )
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert refused.headers["X-HubSpot-RateLimit-Max"] == "5"
    assert refused.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert "Retry-After" not in refused.headers
    hs.control.set_clock(NOW + timedelta(seconds=10, milliseconds=1))
    assert _get(hs).status_code == 200


def test_sdk_sees_429_as_api_exception(hs: HubSpotSandbox) -> None:
    """Through the SDK with default settings, a refused call raises ApiException with status 429."""
    api = HubSpot(access_token=hs.access_token, host=hs.base_url)
    for _ in range(5):
        api.crm.deals.basic_api.get_page(limit=1)
    with pytest.raises(ApiException) as caught:
        api.crm.deals.basic_api.get_page(limit=1)
    assert caught.value.status == 429
    assert json.loads(caught.value.body)["policyName"] == "TEN_SECONDLY_ROLLING"


def test_daily_budget_resets_at_midnight() -> None:
    """Once the daily budget is spent calls get policyName DAILY until midnight in the account's time zone."""
    limits = RateLimitConfig(per_ten_seconds=100, daily=3)
    with running_hubspot_sandbox(seed=2, deals=5, now=NOW, rate_limits=limits) as hs:
        hs.control.set_clock(NOW)
        statuses = [_get(hs).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        assert _get(hs).json()["policyName"] == "DAILY"
        hs.control.set_clock(datetime(2026, 3, 3, 0, 0, 1, tzinfo=UTC))
        ok = _get(hs)
        assert ok.status_code == 200
        assert ok.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "2"


def test_search_has_its_own_per_second_limit_and_no_headers(hs: HubSpotSandbox) -> None:
    """Search is limited per second (SECONDLY), carries no rate-limit headers, and is outside the 10 s
    window."""
    for _ in range(5):
        _get(hs)
    assert _get(hs).status_code == 429  # the 10-second window is spent...
    first = _search(hs)
    assert first.status_code == 200  # ...but search does not use it
    assert not any(h.lower().startswith("x-hubspot-ratelimit") for h in first.headers)
    assert _search(hs).status_code == 200
    refused = _search(hs)
    assert refused.status_code == 429
    assert refused.json()["policyName"] == "SECONDLY"
    assert refused.json()["message"] == "You have reached your secondly limit."
    hs.control.set_clock(NOW + timedelta(seconds=1, milliseconds=1))
    assert _search(hs).status_code == 200


def test_search_429_reaches_the_sdk(hs: HubSpotSandbox) -> None:
    """A POST search over the per-second limit raises ApiException(429) at once (urllib3 never retries
    POST)."""
    api = HubSpot(access_token=hs.access_token, host=hs.base_url)
    api.crm.deals.search_api.do_search(PublicObjectSearchRequest(limit=1))
    api.crm.deals.search_api.do_search(PublicObjectSearchRequest(limit=1))
    with pytest.raises(ApiException) as caught:
        api.crm.deals.search_api.do_search(PublicObjectSearchRequest(limit=1))
    assert caught.value.status == 429


def test_limits_off_sends_no_headers() -> None:
    """With rate limits off no request is refused and no X-HubSpot-RateLimit headers are sent."""
    with running_hubspot_sandbox(seed=2, deals=5, now=NOW, rate_limits=RateLimitConfig.off()) as hs:
        responses = [_get(hs) for _ in range(3)]
        assert all(r.status_code == 200 for r in responses)
        assert "X-HubSpot-RateLimit-Remaining" not in responses[0].headers


def test_tiers_follow_the_usage_guidelines() -> None:
    """Tier presets carry HubSpot's published numbers, and the increase pack raises both limits."""
    assert (RateLimitConfig.tier("starter").per_ten_seconds, RateLimitConfig.tier("starter").daily) == (
        100,
        250_000,
    )
    assert RateLimitConfig.tier("professional").daily == 625_000
    pack = RateLimitConfig.tier("enterprise", increase_packs=1)
    assert (pack.per_ten_seconds, pack.daily) == (250, 2_000_000)


def test_injected_faults_use_hubspot_bodies(hs: HubSpotSandbox) -> None:
    """Injected 5xx and 429 answers carry HubSpot-shaped JSON; control routes stay reachable."""
    hs.control.set_faults(FaultConfig(error_rate=1.0, seed=1))
    failed = _get(hs)
    assert failed.status_code in (500, 502, 503, 504)
    assert failed.json()["status"] == "error"
    hs.control.set_faults(FaultConfig(rate_limit_storm=1.0, seed=1))
    limited = _get(hs)
    assert limited.status_code == 429
    assert limited.json()["errorType"] == "RATE_LIMIT"
    hs.control.set_faults(None)
    assert _get(hs).status_code == 200
    assert hs.control.stats()["faults"] == {"server_error": 0, "rate_limited": 0, "drop": 0}


def test_token_expiry_fault_answers_401_expired() -> None:
    """With token_ttl_s, moving the clock past it turns every call into 401 EXPIRED_AUTHENTICATION."""
    faults = FaultConfig(token_ttl_s=60)
    with running_hubspot_sandbox(
        seed=2, deals=5, now=NOW, faults=faults, rate_limits=RateLimitConfig.off()
    ) as hs:
        assert _get(hs).status_code == 200
        hs.control.set_clock(NOW + timedelta(minutes=5))
        expired = _get(hs)
        assert expired.status_code == 401
        assert expired.json()["category"] == "EXPIRED_AUTHENTICATION"


def test_stats_count_requests_per_endpoint(hs: HubSpotSandbox) -> None:
    """The shared introspection counts calls under HubSpot route templates, refused ones included."""
    hs.control.reset_stats()
    for _ in range(6):
        _get(hs)
    stats = hs.control.stats()
    assert stats["endpoints"]["GET /crm/v3/objects/{objectType}"] == 6
    assert stats["statuses"]["429"] == 1


def test_injected_429s_carry_retry_after_when_asked() -> None:
    """``FaultConfig.retry_after_s`` adds Retry-After to the injected storm's 429s (off by default)."""
    with running_hubspot_sandbox(seed=2, deals=5, now=NOW, rate_limits=RateLimitConfig.off()) as hs:
        hs.control.set_faults(FaultConfig(rate_limit_storm=1.0, seed=1))
        assert "Retry-After" not in _get(hs).headers
        hs.control.set_faults(FaultConfig(rate_limit_storm=1.0, seed=1, retry_after_s=2))
        limited = _get(hs)
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "2"
        assert limited.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
        assert limited.json()["policyName"] == "TEN_SECONDLY_ROLLING"


def test_fault_config_checks_retry_after() -> None:
    """Retry-After is whole seconds, as HTTP sends it; the control route's JSON is checked the same way."""
    assert FaultConfig.from_dict({"retry_after_s": 3}).retry_after_s == 3
    assert FaultConfig.from_dict({"retry_after_s": None}).retry_after_s is None
    with pytest.raises(ValueError, match="retry_after_s must be an integer"):
        FaultConfig.from_dict({"retry_after_s": 1.5})
    with pytest.raises(ValueError, match="must not be negative"):
        FaultConfig(retry_after_s=-1)


def test_cli_retry_after_option_sends_the_header() -> None:
    """``crm-sandbox hubspot --retry-after 2`` answers the limits' and injected 429s with Retry-After: 2."""
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    command = [
        str(Path(sys.executable).parent / "crm-sandbox"),
        "hubspot",
        "--port",
        "0",
        "--deals",
        "5",
        "--rate-limit-storm",
        "1",
        "--retry-after",
        "2",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        printed: dict[str, str] = {}
        assert server.stdout is not None
        for line in server.stdout:
            if m := re.search(r"sandbox on (\S+)", line):
                printed["url"] = m.group(1)
            if m := re.search(r"access token: (\S+)", line):
                printed["token"] = m.group(1)
            if len(printed) == 2:
                break
        limited = requests.get(
            printed["url"] + "/crm/v3/objects/deals?limit=1",
            headers={"Authorization": f"Bearer {printed['token']}"},
            timeout=10,
        )
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "2"
    finally:
        if server.stdout is not None:
            server.stdout.close()
        server.terminate()
        assert server.wait(60) == 0
