"""``followup serve`` with each schedule form really fires cycles, and SIGTERM stops it cleanly.

The first cycle of an account runs at start; a second one only comes from the trigger, so the tests wait for
two. A per-second schedule uses the named-field cron form (``{second: "*/2"}``); the five-field crontab line
(which crashed at start with APScheduler 3.11 before) is shown to start, run and stop cleanly.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import NOW, REPO, write_settings
from tests.e2e.test_serve import get, wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

SCHEDULES = {
    "interval": ("{every: 2s, jitter_seconds: 1}", 2),
    "cron_seconds": ("{cron: {second: '*/2'}, jitter_seconds: 1}", 2),
    "crontab_line": ("{cron: '* * * * mon-sun', time_zone: Europe/Berlin, jitter_seconds: 5}", 1),
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("form", SCHEDULES)
def test_serve_fires_cycles_on_its_schedule_and_stops_cleanly_on_sigterm(
    form: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cycles complete on schedule (counted by /metrics); SIGTERM: exit 0 and `worker_stopped clean=true`."""
    from crm_sandbox.hubspot import running_hubspot_sandbox

    schedule, cycles = SCHEDULES[form]
    port = free_port()
    with running_hubspot_sandbox(seed=3, deals=10, now=NOW) as hs:
        monkeypatch.setenv("CHAOS_SERVE_TOKEN", hs.access_token)
        settings = write_settings(tmp_path, host=hs.base_url, token_env="CHAOS_SERVE_TOKEN")
        text = settings.read_text().replace(
            "logging: {level: warning, format: json}", "logging: {level: info}"
        )
        text = text.replace("store:", f"metrics: {{port: {port}}}\nstore:", 1)
        settings.write_text(
            text.replace("    shadow: false\n", f"    shadow: false\n    schedule: {schedule}\n")
        )
        process = subprocess.Popen(
            [sys.executable, "-c", "from cli import main; main()", "serve", "--settings", str(settings)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            done = f'followup_cycles_total{{account="demo",status="ok"}} {float(cycles)}'
            wait_for(
                lambda: done in get(f"http://127.0.0.1:{port}/metrics")[1], f"{cycles} completed cycle(s)"
            )
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, err.decode()[-2000:]
    lines = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    events = [line["event"] for line in lines]
    assert events.count("cycle_finished") >= cycles
    assert "cycle_crashed" not in events
    assert lines[-1]["event"] == "worker_stopped"
    assert lines[-1]["clean"] is True
