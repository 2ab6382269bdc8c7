"""``followup serve``'s self-monitoring: ``/healthz`` degraded (with its reasons) and the cursor age.

Three accounts in one real ``followup serve`` process: ``demo`` against the HubSpot sandbox (healthy once its
first cycle stored a batch), ``stale`` whose CRM cannot be reached and whose cursor last moved five hours
ago on an hourly schedule (three missed runs make it stale), and ``locked`` whose token is not set (blocked
on configuration). /healthz answers 200 with ``degraded`` and one reason per problem; /metrics has every
account's ``followup_cursor_age_seconds`` and the rejected-record counters at zero.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from store import StateStore
from tests.e2e.conftest import POLICY, REPO
from tests.e2e.test_serve import get, wait_for

pytestmark = pytest.mark.slow

RETRY = "{attempts: 2, initial_wait: 0.01, max_wait: 0.05, jitter_seed: 1}"


def _account(name: str, host: str, token_env: str, schedule: str) -> str:
    return (
        f"  {name}:\n"
        "    crm: hubspot\n"
        f"    policy: {POLICY}\n"
        f"    schedule: {schedule}\n"
        "    hubspot:\n"
        f"      host: '{host}'\n"
        f"      access_token_env: {token_env}\n"
        "      tier: enterprise\n"
        f"      retry: {RETRY}\n"
    )


def _age(metrics: str, account: str) -> float | None:
    found = re.search(rf'^followup_cursor_age_seconds{{account="{account}"}} (\S+)$', metrics, re.M)
    return float(found.group(1)) if found else None


def test_healthz_is_degraded_with_reasons_and_metrics_show_cursor_ages(tmp_path: Path) -> None:
    from crm_sandbox.hubspot import running_hubspot_sandbox

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    database = tmp_path / "state.sqlite"
    five_hours_ago = datetime.now(UTC) - timedelta(hours=5)
    seeded = StateStore(f"sqlite:///{database}")
    seeded.ensure_account("stale", "hubspot", five_hours_ago)
    seeded.store_batch("stale", "seed", [], (), {"hi": "0"}, five_hours_ago)
    seeded.finish_full_pull("stale", "seed", five_hours_ago)  # no full pull due: the next one is incremental
    seeded.close()
    with running_hubspot_sandbox(seed=3, deals=10) as hs:
        settings = tmp_path / "settings.yaml"
        settings.write_text(
            f"store: {{url: 'sqlite:///{database}'}}\n"
            f"metrics: {{port: {port}, stale_cursor_runs: 3}}\n"
            "logging: {level: info, format: json}\n"
            "accounts:\n"
            + _account("demo", hs.base_url, "HEALTH_TOKEN", "{every: 15m}")
            + _account("stale", "http://127.0.0.1:9", "HEALTH_TOKEN", "{every: 1h}")
            + _account("locked", hs.base_url, "HEALTH_TOKEN_NOT_SET", "{every: 15m}"),
            encoding="utf-8",
        )
        env = {k: v for k, v in __import__("os").environ.items() if k != "HEALTH_TOKEN_NOT_SET"}
        process = subprocess.Popen(
            [sys.executable, "-c", "from cli import main; main()", "serve", "--settings", str(settings)],
            cwd=REPO,
            env={**env, "HEALTH_TOKEN": hs.access_token},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            url = f"http://127.0.0.1:{port}"

            def settled() -> tuple[int, dict[str, object]] | None:
                status, body = get(f"{url}/healthz")
                health = json.loads(body)
                done = health["accounts"]
                ready = done.get("demo") == "ok" and "stale" in done and "locked" in done
                return (status, health) if ready else None

            status, health = wait_for(settled, "every account's first cycle")
            assert status == 200
            assert health["status"] == "degraded"
            problems = health["problems"]
            assert isinstance(problems, list)
            assert len(problems) == 2, problems
            stale, locked = sorted(problems, key=lambda p: not str(p).startswith("stale"))
            assert str(stale).startswith("stale: cursor last moved ")
            assert "3 or more scheduled runs ago (every 1h); degraded after 3" in str(stale)
            assert str(locked).startswith("locked: blocked on configuration since ")
            assert "HEALTH_TOKEN_NOT_SET" in str(locked)
            assert health["accounts"] == {"demo": "ok", "stale": "retry_later", "locked": "fix_configuration"}

            code, metrics = get(f"{url}/metrics")
            assert code == 200
            stale_age, demo_age, locked_age = (_age(metrics, a) for a in ("stale", "demo", "locked"))
            assert stale_age is not None
            assert 5 * 3600 - 60 < stale_age < 5 * 3600 + 600
            assert demo_age is not None
            assert demo_age < 600  # its cycle just stored a batch
            assert locked_age is not None  # no cursor yet: counted from the worker's start
            assert locked_age < 600
            for reason in ("out_of_range", "unreadable", "wrong_type", "evaluation_failed"):
                assert f'followup_records_rejected_total{{account="demo",reason="{reason}"}} 0.0' in metrics
            assert "followup_cursor_lag_seconds" not in metrics  # replaced by the cursor age
        finally:
            process.send_signal(signal.SIGTERM)
            _, errors = process.communicate(timeout=120)
        assert process.returncode == 0, errors.decode()[-3000:]
