"""The client-side limiter, the error translation, and the SDK built with urllib3 retries off."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from connectors.errors import BudgetExhausted, FixConfiguration, RateLimited, RetryLater, SkipRecord
from connectors.hubspot.auth import OAuthRefresher, StaticToken, build_token_source, read_secret
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.errors import translate_status
from connectors.hubspot.limits import LimiterSettings, RateLimiter
from connectors.hubspot.options import HubSpotOptions
from connectors.retry import RetrySettings


class FakeTime:
    """A monotonic clock that only moves when somebody sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _limiter(t: FakeTime, **kw) -> RateLimiter:
    settings = LimiterSettings(**{"ten_second_limit": 10, "daily_limit": 1000, "headroom": 1.0, **kw})
    return RateLimiter(
        settings, clock=t.clock, sleep=t.sleep, now=lambda: datetime(2026, 3, 1, 12, tzinfo=UTC)
    )


def test_ten_second_window_blocks_the_call_over_the_limit():
    """The eleventh call within ten seconds waits for the first one to leave the window."""
    t = FakeTime()
    limiter = _limiter(t)
    for _ in range(10):
        limiter.acquire()
    assert t.slept == []
    limiter.acquire()
    assert sum(t.slept) == pytest.approx(10.0)


def test_search_has_its_own_per_second_budget():
    """Searches are limited per second and do not use the 10-second window."""
    t = FakeTime()
    limiter = _limiter(t, search_per_second=2)
    for _ in range(10):
        limiter.acquire()
    limiter.acquire(search=True)
    limiter.acquire(search=True)
    assert t.slept == []
    limiter.acquire(search=True)
    assert sum(t.slept) == pytest.approx(1.0)


def test_daily_share_stops_the_cycle_with_the_reset_time():
    """Once our share of the daily limit is spent, acquire raises BudgetExhausted resuming at midnight."""
    t = FakeTime()
    limiter = _limiter(t, daily_limit=100, daily_share=0.05)
    for _ in range(5):
        limiter.acquire()
    with pytest.raises(BudgetExhausted) as caught:
        limiter.acquire()
    assert caught.value.resume_at == datetime(2026, 3, 2, tzinfo=UTC)


def test_daily_share_counts_the_calls_earlier_cycles_made_today():
    """The share is the portal's, not this process's: calls of earlier cycles today (from the state store,
    whichever worker made them; asked from local midnight in the account's zone) count against it."""
    t = FakeTime()
    asked: list[datetime] = []

    def prior(since: datetime) -> int:
        asked.append(since)
        return 3

    settings = LimiterSettings(
        ten_second_limit=10, daily_limit=100, daily_share=0.05, account_time_zone="Asia/Tokyo"
    )
    limiter = RateLimiter(
        settings, clock=t.clock, sleep=t.sleep, now=lambda: datetime(2026, 3, 1, 12, tzinfo=UTC), prior=prior
    )
    limiter.acquire()
    limiter.acquire()
    with pytest.raises(BudgetExhausted, match="5 calls on this account today"):
        limiter.acquire()
    assert asked == [datetime(2026, 2, 28, 15, tzinfo=UTC)]  # midnight in Tokyo
    assert limiter.spent_today == 5


def test_daily_remaining_header_leaves_the_others_their_part():
    """When HubSpot reports only the others' part of the day left, we stop (header names in any case)."""
    t = FakeTime()
    limiter = _limiter(t, daily_limit=1000, daily_share=0.5)
    limiter.acquire()
    limiter.observe({"x-hubspot-ratelimit-daily": "1000", "x-hubspot-ratelimit-daily-remaining": "499"})
    with pytest.raises(BudgetExhausted):
        limiter.acquire()


def test_remaining_header_slows_down_when_the_window_is_nearly_spent():
    """A near-zero X-HubSpot-RateLimit-Remaining pauses the next call even if our own count is low."""
    t = FakeTime()
    limiter = _limiter(t, ten_second_limit=100, headroom=0.9)
    limiter.acquire()
    limiter.observe({"X-HubSpot-RateLimit-Remaining": "0", "X-HubSpot-RateLimit-Max": "100"})
    limiter.acquire()
    assert sum(t.slept) > 0


def test_limiter_settings_come_from_the_tier_unless_the_limits_are_set():
    """The options give the limiter the tier's limits (or the ones set) and the share, headroom and zone."""
    options = HubSpotOptions(access_token_env="T", tier="professional", daily_budget_share=0.25)
    ten, day = options.limits
    assert options.limiter_settings == LimiterSettings(
        ten_second_limit=ten,
        daily_limit=day,
        daily_share=0.25,
        headroom=0.9,
        search_per_second=4.0,
        account_time_zone="UTC",
    )
    own = HubSpotOptions(
        access_token_env="T", ten_second_limit=50, daily_limit=9_000, account_time_zone="Europe/Berlin"
    ).limiter_settings
    assert (own.ten_second_limit, own.daily_limit, own.account_time_zone) == (50, 9_000, "Europe/Berlin")


class WindowServer:
    """HubSpot's side of the 10-second window, on the fake clock: it counts a call at its arrival (between
    the limiter's send and the answer), refuses it when the window is full, and answers the headers."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.arrivals: list[float] = []
        self.refused = 0

    def call(self, t: FakeTime, limiter: RateLimiter, there: float, back: float, others: int = 0) -> None:
        """One call through ``limiter``: ``there`` seconds to arrive, ``back`` to come back; ``others``
        calls of another process of the app arrive with it."""
        limiter.acquire()
        t.now += there
        self.arrivals = [a for a in self.arrivals if a > t.now - 10.0]
        self.arrivals.extend([t.now] * others)
        admitted = len(self.arrivals) < self.limit
        if admitted:
            self.arrivals.append(t.now)
        else:
            self.refused += 1
        t.now += back
        headers = {
            "X-HubSpot-RateLimit-Max": str(self.limit),
            "X-HubSpot-RateLimit-Remaining": str(max(0, self.limit - len(self.arrivals))),
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
        }
        limiter.observe(headers, refused=not admitted)


def test_alone_on_the_window_the_limiter_uses_all_of_it_and_is_never_refused():
    """Default headroom (0.9), Starter's 100 per 10 s, network delays that vary call to call: with nobody
    else in the window the calls go at the full limit (not 90 per 10 s), and none is refused, because a
    call counts in our window from its answer (HubSpot counts it at its arrival, before)."""
    import random

    t = FakeTime()
    start = t.now
    limiter = _limiter(t, ten_second_limit=100, headroom=0.9, daily_limit=250_000)
    server = WindowServer(100)
    delays = random.Random(7)
    for _ in range(1000):
        server.call(t, limiter, there=delays.uniform(0.001, 0.05), back=delays.uniform(0.001, 0.05))
    assert server.refused == 0
    # 1,000 calls at 100 per 10 s: 9 windows after the first 100, each a round trip longer (a call counts
    # from its answer): about 96 s; at 90 per 10 s (the fixed headroom) it took 111 s
    assert t.now - start < 100


def test_another_process_in_the_window_brings_the_headroom_back():
    """When HubSpot's remaining count shows calls that are not ours, the limiter keeps the headroom (90 of
    100) for a window's length and pauses when the window runs low."""
    t = FakeTime()
    limiter = _limiter(t, ten_second_limit=100, headroom=0.9)
    server = WindowServer(100)
    for _ in range(10):  # alone: nothing waits
        server.call(t, limiter, there=0.001, back=0.001)
    assert t.slept == []
    server.call(t, limiter, there=0.001, back=0.001, others=75)  # 75 foreign calls arrive meanwhile
    for _ in range(10):
        server.call(t, limiter, there=0.001, back=0.001)
    assert server.refused == 0
    assert sum(t.slept) > 0  # paused for the others (ours: 21 in the window, far from 100)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (429, {"policyName": "TEN_SECONDLY_ROLLING", "errorType": "RATE_LIMIT"}, RetryLater),
        (429, {"policyName": "DAILY", "errorType": "RATE_LIMIT"}, BudgetExhausted),
        (502, {}, RetryLater),
        (0, {}, RetryLater),
        (401, {"category": "INVALID_AUTHENTICATION"}, FixConfiguration),
        (403, {"category": "MISSING_SCOPES"}, FixConfiguration),
        (404, {"category": "OBJECT_NOT_FOUND"}, SkipRecord),
        (409, {"category": "CONFLICT"}, SkipRecord),
    ],
)
def test_status_translation_names_the_next_move(status, body, expected):
    """Each HTTP failure becomes the error class that says what the caller should do."""
    error = translate_status(status, body, "deals.search", Exception())
    assert isinstance(error, expected)
    assert "deals.search" in str(error)


def test_ten_second_429_without_retry_after_waits_out_the_window():
    """A 429 without Retry-After waits HubSpot's window; the search limit waits a second."""
    ten = translate_status(429, {"policyName": "TEN_SECONDLY_ROLLING"}, "x", Exception())
    secondly = translate_status(429, {"message": "You have reached your secondly limit."}, "x", Exception())
    assert isinstance(ten, RateLimited)
    assert (ten.retry_after, ten.window) == (None, 10.0)
    assert isinstance(secondly, RateLimited)
    assert (secondly.retry_after, secondly.window) == (None, 1.0)


def test_unknown_property_is_a_configuration_problem():
    """A 400 for a property that does not exist tells the admin to run setup, naming the property."""
    message = (
        'Property values were not valid: [{"isValid":false,"error":"PROPERTY_DOESNT_EXIST",'
        '"name":"followup_state"}]'
    )
    error = translate_status(
        400, {"category": "VALIDATION_ERROR", "message": message}, "deals.batch_update", Exception()
    )
    assert isinstance(error, FixConfiguration)
    assert "followup_state" in str(error)
    assert "setup" in str(error)


def test_secrets_come_from_env_or_file_and_are_never_shown(tmp_path):
    """Secrets resolve from the named source; errors name the source, never a value."""
    assert read_secret("HS_TOKEN", None, "token", {"HS_TOKEN": " abc "}) == "abc"
    path = tmp_path / "token"
    path.write_text("filetoken\n")
    assert read_secret(None, str(path), "token") == "filetoken"
    with pytest.raises(FixConfiguration, match="HS_MISSING"):
        read_secret("HS_MISSING", None, "token", {})
    options = HubSpotOptions(access_token_env="HS_TOKEN")
    source = build_token_source(options, refresh=_no_refresh, environ={"HS_TOKEN": "secret-value"})
    assert isinstance(source, StaticToken)
    assert "secret-value" not in repr(source)


def _no_refresh(client_id: str, secret: str, token: str) -> dict[str, str]:
    raise AssertionError("a private app's token is never refreshed")


def test_oauth_refresher_refreshes_before_expiry():
    """The OAuth token is refreshed at first use and again shortly before it expires."""
    t = FakeTime()
    calls: list[str] = []

    def refresh(client_id: str, secret: str, token: str):
        calls.append(token)
        return {"access_token": f"at{len(calls)}", "refresh_token": f"rt{len(calls)}", "expires_in": 1800}

    source = OAuthRefresher("cid", "secret", "rt0", refresh, clock=t.clock)
    assert source.token() == "at1"
    t.now += 1000
    assert source.token() == "at1"
    t.now += 600
    assert source.token() == "at2"
    assert calls == ["rt0", "rt1"]


def test_options_reject_two_ways_to_authenticate():
    """Settings with both a private-app token and OAuth fields are refused with both names."""
    with pytest.raises(ValueError, match="choose one way"):
        HubSpotOptions(access_token_env="A", client_id="c", client_secret_env="S", refresh_token_env="R")
    with pytest.raises(ValueError, match="OAuth needs"):
        HubSpotOptions(client_id="c")


# ------------------------------------------------------------------------------ the SDK over real HTTP


class _Handler(BaseHTTPRequestHandler):
    hits: list[str] = []  # noqa: RUF012 - shared by the server thread on purpose

    def _answer(self) -> None:
        self.hits.append(f"{self.command} {self.path.split('?')[0]}")
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.path.startswith("/crm/v3/owners"):
            body = json.dumps(
                {
                    "status": "error",
                    "message": "You have reached your ten_secondly_rolling limit.",
                    "errorType": "RATE_LIMIT",
                    "policyName": "TEN_SECONDLY_ROLLING",
                }
            ).encode()
            self.send_response(429)
            self.send_header("Retry-After", "1")
        else:
            body = json.dumps({"results": [], "total": 0}).encode()
            self.send_response(200)
            self.send_header("X-HubSpot-RateLimit-Remaining", "42")
            self.send_header("X-HubSpot-RateLimit-Daily-Remaining", "12345")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer  # noqa: N815 - http.server's naming

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def http_server() -> Iterator[str]:
    _Handler.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _client(host: str, t: FakeTime) -> HubSpotClient:
    limiter = RateLimiter(LimiterSettings(), clock=t.clock, sleep=t.sleep)
    return HubSpotClient(
        host,
        StaticToken("tok"),
        limiter,
        RetrySettings(attempts=3, rate_limit_attempts=4, jitter_seed=1),
        sleep=t.sleep,
    )


def test_sdk_does_not_retry_a_get_429_with_retry_after(http_server):
    """urllib3 would silently retry a GET 429 with Retry-After; ours sends it once per attempt we make."""
    t = FakeTime()
    client = _client(http_server, t)
    with pytest.raises(RetryLater) as caught:
        client.send_once("owners.list", "owners", "get_page", limit=1)
    assert caught.value.status == 429
    assert caught.value.retry_after == 1.0
    assert _Handler.hits == ["GET /crm/v3/owners/"]


def test_retry_layer_retries_429s_and_counts_every_request(http_server):
    """The retry layer re-sends a 429 up to its rate-limit attempts, sleeping Retry-After; all are counted."""
    t = FakeTime()
    client = _client(http_server, t)
    with pytest.raises(RateLimited):
        client.send("owners.list", "owners", "get_page", limit=1)
    assert len(_Handler.hits) == 4
    assert client.calls["owners.list"] == 4
    assert t.slept == [1.0, 1.0, 1.0]


def test_success_reads_json_and_rate_limit_headers(http_server):
    """A 200 comes back as parsed JSON, and the limiter learns the daily remaining from its headers."""
    t = FakeTime()
    client = _client(http_server, t)
    response = client.send(
        "deals.search", "deals.search", "do_search", public_object_search_request={"limit": 1}, search=True
    )
    assert response.status == 200
    assert response.body == {"results": [], "total": 0}
    assert client.limiter.daily_remaining == 12345


def test_connection_refused_is_retry_later():
    """A refused connection surfaces at once as RetryLater (no hidden urllib3 connection retries)."""
    t = FakeTime()
    client = _client("http://127.0.0.1:9", t)
    with pytest.raises(RetryLater, match="connection failed"):
        client.send_once("owners.list", "owners", "get_page", limit=1)
    assert client.calls["owners.list"] == 1
