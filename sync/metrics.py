"""Prometheus metrics and the ``/healthz`` + ``/metrics`` endpoint of ``followup serve``.

Metrics live in their own registry (nothing global, nothing at import time). The cursor age is read from
the state store when scraped (``sync.health``): the time since each account's cursor last moved, so a stuck
worker shows a growing age even when no cycle finishes to update a gauge, and a restarted one the true age.
``/healthz`` answers ``ok`` or ``degraded`` (a stale cursor, an account blocked on configuration; the
reasons listed) with HTTP 200 while the worker runs, and ``stopping`` with 503 once it stops.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from sync.cycle import CycleResult
from sync.health import Health

CYCLE_STATUSES = ("ok", "stopped", "retry_later", "fix_configuration", "lease_held", "blocked", "error")
# followup_errors kinds: the cycle statuses that are errors, and what serve reports outside a cycle
ERROR_KINDS = ("retry_later", "fix_configuration", "blocked", "error", "configuration", "exception")
# followup_records_rejected reasons (connectors.values, the mappings, the cycle); others count as they come
REJECTION_REASONS = (
    "out_of_range",
    "unreadable",
    "wrong_type",
    "unknown_stage",
    "missing_date",
    "mapping_failed",
    "evaluation_failed",
)


class WorkerMetrics:
    """The counters ``serve`` exports, updated once per cycle from its ``CycleResult``."""

    def __init__(self, clock: Callable[[], datetime], health: Health | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._clock = clock
        self._health = health
        self._lock = threading.Lock()
        self.last_status: dict[str, str] = {}
        r = self.registry
        self.cycles = Counter(
            "followup_cycles", "Cycles run, by account and outcome", ["account", "status"], registry=r
        )
        self.actions = Counter(
            "followup_actions",
            "Actions by kind, rule and ledger status",
            ["account", "kind", "rule", "status"],
            registry=r,
        )
        self.api_calls = Counter(
            "followup_api_calls", "CRM API calls by endpoint", ["account", "endpoint"], registry=r
        )
        self.errors = Counter(
            "followup_errors", "Cycles that ended in an error, by kind", ["account", "error"], registry=r
        )
        self.duration = Histogram(
            "followup_cycle_duration_seconds",
            "Wall time of a cycle",
            ["account"],
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800),
            registry=r,
        )
        self.mirrored = Gauge("followup_mirrored_deals", "Deals in the local mirror", ["account"], registry=r)
        self.rejected = Counter(
            "followup_records_rejected",
            "Deals skipped because they could not be mapped or evaluated, by reason",
            ["account", "reason"],
            registry=r,
        )
        self.in_progress = Gauge(
            "followup_cycle_in_progress",
            "1 while a cycle of the account runs in this worker",
            ["account"],
            registry=r,
        )
        r.register(_CursorAgeCollector(self))

    def start(self, accounts: Iterable[str]) -> None:
        """Every account's series at zero from the start: a scrape before the first cycle ends sees them."""
        for account in accounts:
            self.in_progress.labels(account).set(0)
            for status in CYCLE_STATUSES:
                self.cycles.labels(account, status)
            for kind in ERROR_KINDS:
                self.errors.labels(account, kind)
            for reason in REJECTION_REASONS:
                self.rejected.labels(account, reason)
            self.duration.labels(account)

    @contextmanager
    def cycle_running(self, account: str) -> Iterator[None]:
        """``followup_cycle_in_progress`` is 1 for the account while the block runs."""
        self.in_progress.labels(account).set(1)
        try:
            yield
        finally:
            self.in_progress.labels(account).set(0)

    def observe(self, result: CycleResult) -> None:
        account = result.account
        self.cycles.labels(account, result.status).inc()
        if result.status not in {
            "ok",
            "stopped",
            "lease_held",
        }:  # blocked, retry_later, fix_configuration, error
            self.errors.labels(account, result.status).inc()
        for (kind, rule, status), n in result.actions.items():
            self.actions.labels(account, kind, rule, status).inc(n)
        for endpoint, n in result.api_calls_by_endpoint.items():
            self.api_calls.labels(account, endpoint).inc(n)
        for reason, n in result.rejected.items():
            self.rejected.labels(account, reason).inc(n)
        if result.status not in {"lease_held", "blocked"} and result.run_id != "-":
            self.duration.labels(account).observe(result.duration_s)
        if "mirrored" in result.counts:
            self.mirrored.labels(account).set(result.counts["mirrored"])
        with self._lock:
            self.last_status[account] = result.status

    def error(self, account: str, kind: str) -> None:
        self.errors.labels(account, kind).inc()
        with self._lock:
            self.last_status[account] = kind

    def cursor_ages(self) -> Mapping[str, float]:
        """Seconds since each account's cursor moved, from the store (none without a health check)."""
        if self._health is None:
            return {}
        return {h.account: h.cursor_age_s for h in self._health.check()}

    def health(self) -> dict[str, Any]:
        """``status`` ok or degraded, the reasons, and the last cycle status per account."""
        problems = [p for h in self._health.check() for p in h.problems] if self._health else []
        with self._lock:
            accounts = dict(self.last_status)
        return {"status": "degraded" if problems else "ok", "problems": problems, "accounts": accounts}


_AGE = (
    "followup_cursor_age_seconds",
    "Seconds since the account's cursor last moved (a pull stored a batch)",
)


class _CursorAgeCollector(Collector):
    def __init__(self, metrics: WorkerMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(*_AGE, labels=["account"])
        for account, age in sorted(self._metrics.cursor_ages().items()):
            family.add_metric([account], age)
        yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(*_AGE)


class MetricsServer:
    """``/metrics`` (Prometheus text format) and ``/healthz`` (JSON) on a local port, in a daemon thread."""

    def __init__(self, metrics: WorkerMetrics, host: str, port: int, healthy: Callable[[], bool]) -> None:
        self._metrics = metrics
        self._healthy = healthy
        handler = self._handler()
        self._server = ThreadingHTTPServer((host, port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        metrics, healthy = self._metrics, self._healthy

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    self._send(
                        200, "text/plain; version=0.0.4; charset=utf-8", generate_latest(metrics.registry)
                    )
                elif self.path == "/healthz":
                    body = metrics.health()
                    running = healthy()
                    if not running:
                        body["status"] = "stopping"
                    self._send(200 if running else 503, "application/json", json.dumps(body).encode())
                else:
                    self._send(404, "text/plain", b"not found\n")

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Scrapes are not worth a log line each."""

        return Handler
