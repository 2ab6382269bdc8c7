"""``followup serve``: scheduled cycles, /healthz and /metrics, and a clean stop on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import NOW, REPO, write_settings

pytestmark = pytest.mark.slow


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def wait_for(predicate, what: str, limit: float = 90.0):
    """Poll until ``predicate()`` returns something truthy (a liveness wait, not a timing assertion)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


def test_serve_runs_cycles_exports_metrics_and_stops_on_sigterm(tmp_path: Path, monkeypatch) -> None:
    """The scheduler runs cycles, /metrics counts them, and SIGTERM ends the process cleanly with status 0."""
    import socket

    from crm_sandbox.hubspot import running_hubspot_sandbox

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with running_hubspot_sandbox(seed=3, deals=20, now=NOW) as hs:
        monkeypatch.setenv("E2E_SERVE_TOKEN", hs.access_token)
        settings = write_settings(tmp_path, host=hs.base_url, token_env="E2E_SERVE_TOKEN")
        text = settings.read_text().replace(
            "logging: {level: warning, format: json}", "logging: {level: info}"
        )
        text = text.replace("store:", f"metrics: {{port: {port}}}\nstore:", 1)
        settings.write_text(
            text.replace("    shadow: false\n", "    shadow: false\n    schedule: {every: 2s}\n")
        )
        process = subprocess.Popen(
            [sys.executable, "-c", "from cli import main; main()", "serve", "--settings", str(settings)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            metrics = wait_for(
                lambda: (
                    lambda r: (
                        r[1] if 'followup_cycles_total{account="demo",status="ok"} 2.0' in r[1] else None
                    )
                )(get(f"{base}/metrics")),
                "two completed cycles",
            )
            status, health = get(f"{base}/healthz")
            assert status == 200
            assert json.loads(health) == {"status": "ok", "problems": [], "accounts": {"demo": "ok"}}
            assert 'followup_actions_total{account="demo",kind="' in metrics
            assert "followup_api_calls_total" in metrics
            assert 'followup_cursor_age_seconds{account="demo"}' in metrics
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 0, err.decode()[-2000:]
        lines = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
        events = [line["event"] for line in lines]
        assert "worker_started" in events
        assert events.count("cycle_finished") >= 2
        assert events[-1] == "worker_stopped"
        assert lines[-1]["clean"] is True
