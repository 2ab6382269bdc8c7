"""``followup serve``'s /metrics before the first cycle ends: every account's series exist from the start.

Before, a scrape during the first cycle (minutes on a large portal) found no ``followup_`` series at all,
so dashboards showed nothing and an absent-series alert could not tell "starting" from "broken".
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from crm_sandbox.faults import FaultConfig

from tests.e2e.conftest import NOW, REPO, write_settings

pytestmark = pytest.mark.slow


def scrape(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return str(response.read().decode())
    except OSError:
        return None


def wait_for(predicate, what: str, limit: float = 120.0):
    """Poll until ``predicate()`` is truthy (a liveness wait, not a timing assertion)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def test_metrics_have_every_account_and_an_in_progress_gauge_before_the_first_cycle_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crm_sandbox.hubspot import running_hubspot_sandbox

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    slow = FaultConfig(latency_ms=150)  # every request takes 150 ms: the first cycle lasts seconds
    with running_hubspot_sandbox(seed=3, deals=10, now=NOW, faults=slow) as hs:
        monkeypatch.setenv("E2E_METRICS_TOKEN", hs.access_token)
        settings = write_settings(tmp_path, host=hs.base_url, token_env="E2E_METRICS_TOKEN")
        settings.write_text(
            settings.read_text().replace("store:", f"metrics: {{port: {port}}}\nstore:", 1),
            encoding="utf-8",
        )
        process = subprocess.Popen(
            [sys.executable, "-c", "from cli import main; main()", "serve", "--settings", str(settings)],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            first = wait_for(lambda: scrape(port), "the metrics endpoint")
            assert 'followup_cycles_total{account="demo",status="ok"} 0.0' in first
            assert 'followup_errors_total{account="demo",error="retry_later"} 0.0' in first
            assert 'followup_cycle_duration_seconds_count{account="demo"} 0.0' in first
            assert 'followup_cycle_in_progress{account="demo"}' in first
            running = wait_for(
                lambda: (m := scrape(port)) and 'followup_cycle_in_progress{account="demo"} 1.0' in m and m,
                "the first cycle to start",
            )
            assert 'followup_cycles_total{account="demo",status="ok"} 0.0' in running
            done = wait_for(
                lambda: (m := scrape(port)) and 'status="ok"} 1.0' in m and m,
                "the first cycle to end",
            )
            assert 'followup_cycle_in_progress{account="demo"} 0.0' in done
        finally:
            process.send_signal(signal.SIGTERM)
            _, errors = process.communicate(timeout=120)
        assert process.returncode == 0, errors.decode()[-3000:]
