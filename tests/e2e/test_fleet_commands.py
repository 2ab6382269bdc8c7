"""The fleet's settings and commands as a user runs them: ``worker:``, ``accounts_dir``, ``followup status``,
the daily API budget across processes, and a broken account at ``serve``'s start.

Real ``followup`` processes against a multi-portal HubSpot sandbox (one server, a portal per account),
with the SQLite store: one worker process, as SQLite serves (the PostgreSQL fleet is in tests/fleet).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from store import StateStore
from tests.e2e.conftest import POLICY, REPO

pytestmark = pytest.mark.slow


def followup(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from cli import main; main()", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def portals() -> Iterator[Any]:
    """Six HubSpot portals of 12 deals behind one server; every request takes 20 ms (cycles overlap)."""
    from crm_sandbox.faults import FaultConfig
    from crm_sandbox.hubspot.fleet import running_hubspot_fleet

    with running_hubspot_fleet(portals=6, deals=12, seed=300, faults=FaultConfig(latency_ms=20)) as fleet:
        yield fleet


def account(name: str, portal: int, fleet: Any, folder: Path, *, extra: str = "", indent: str = "  ") -> str:
    token = folder / f"{name}.token"
    token.write_text(fleet.tokens[portal])
    lines = [
        f"{name}:",
        "  crm: hubspot",
        f"  policy: {POLICY}",
        "  schedule: {every: 1h}",
        "  hubspot:",
        f"    host: '{fleet.base_url}'",
        f"    access_token_file: '{token}'",
        "    tier: enterprise",
        "    retry: {attempts: 8, initial_wait: 0.05, max_wait: 1, jitter_seed: 1}",
        *[f"    {line}" for line in extra.splitlines() if line],
    ]
    return "".join(f"{indent}{line}\n" for line in lines)


def header(folder: Path, worker: str = "") -> str:
    return (
        f"store: {{url: 'sqlite:///{folder / 'state' / 'followup.sqlite'}'}}\n"
        "metrics: {port: 0}\n"
        "logging: {level: info, format: json}\n" + worker
    )


def peak(intervals: list[tuple[float, float]]) -> int:
    marks = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    level = most = 0
    for _, step in marks:
        level += step
        most = max(most, level)
    return most


def test_serve_runs_at_most_max_concurrent_cycles(portals: Any, tmp_path: Path) -> None:
    """``worker.max_concurrent_cycles: 2`` with six accounts due at once: two cycles at a time, never three,
    and all six run; SIGTERM stops it with 0."""
    settings = tmp_path / "settings.yaml"
    body = "".join(account(f"acct-{n}", n, portals, tmp_path) for n in range(6))
    settings.write_text(
        header(tmp_path, "worker: {max_concurrent_cycles: 2, poll_interval: 1s}\n") + "accounts:\n" + body
    )
    process = subprocess.Popen(
        [sys.executable, "-c", "from cli import main; main()", "serve", "--settings", str(settings)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    database = f"sqlite:///{tmp_path / 'state' / 'followup.sqlite'}"
    try:
        deadline = time.monotonic() + 240  # liveness only
        finished: list[Any] = []
        while time.monotonic() < deadline and process.poll() is None:
            if (tmp_path / "state" / "followup.sqlite").exists():
                store = StateStore(database)
                try:
                    finished = [r for n in range(6) for r in store.runs(f"acct-{n}") if r.finished_at]
                finally:
                    store.close()
                if len(finished) == 6:
                    break
            time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err[-3000:]
    assert len(finished) == 6
    assert {r.status for r in finished} == {"ok"}
    spans = [(r.started_at.timestamp(), r.finished_at.timestamp()) for r in finished if r.finished_at]
    assert peak(spans) == 2


@pytest.mark.parametrize(
    ("worker", "message"),
    [
        (
            "worker: {max_concurrent_cycles: 0}\n",
            "worker.max_concurrent_cycles: Input should be greater than or equal to 1",
        ),
        ("worker: {poll_interval: 10m}\n", "worker.poll_interval: poll_interval may be at most 5m"),
        ("worker: {slots: 3}\n", "worker.slots: unknown key"),
    ],
)
def test_serve_refuses_worker_settings_out_of_range(
    worker: str, message: str, portals: Any, tmp_path: Path
) -> None:
    settings = tmp_path / "settings.yaml"
    settings.write_text(header(tmp_path, worker) + "accounts:\n" + account("a", 0, portals, tmp_path))
    done = followup("serve", "--settings", str(settings))
    assert done.returncode == 2
    assert f"{settings}:4:" in done.stderr
    assert message in done.stderr


def test_the_daily_budget_is_the_account_s_whichever_process_runs_it(portals: Any, tmp_path: Path) -> None:
    """The calls one ``followup run --once`` made count for the next process: with a daily share just
    one call above what the first cycle spent, the second cycle (another process) stops for the budget.
    Before, each process counted from zero and the second cycle spent the share again."""
    settings = tmp_path / "settings.yaml"
    settings.write_text(header(tmp_path) + "accounts:\n" + account("acct", 1, portals, tmp_path))
    first = followup("run", "--once", "--settings", str(settings))
    assert first.returncode == 0, first.stderr[-3000:]
    store = StateStore(f"sqlite:///{tmp_path / 'state' / 'followup.sqlite'}")
    try:
        spent = store.runs("acct")[0].api_calls
    finally:
        store.close()
    assert spent > 10
    budget = f"daily_limit: {spent + 1}\ndaily_budget_share: 1\n"
    settings.write_text(
        header(tmp_path) + "accounts:\n" + account("acct", 1, portals, tmp_path, extra=budget)
    )
    second = followup("run", "--once", "--settings", str(settings))
    assert second.returncode == 1
    finished = [json.loads(line) for line in second.stderr.splitlines() if '"cycle_finished"' in line]
    assert [(e["status"], e["api_calls"]) for e in finished] == [("retry_later", 1)]
    assert f"({spent + 1} calls on this account today)" in finished[0]["error"]


def test_accounts_from_a_folder_of_account_files(portals: Any, tmp_path: Path) -> None:
    """``accounts_dir``: every YAML file of the folder holds accounts; ``followup validate`` checks them
    with their file:line:col, ``run --once`` runs them, ``status`` lists them."""
    folder = tmp_path / "accounts"
    folder.mkdir()
    (folder / "a.yaml").write_text(account("first", 2, portals, tmp_path, indent=""))
    (folder / "b.yaml").write_text(account("second", 3, portals, tmp_path, indent=""))
    (folder / "notes.txt").write_text("not an account file")
    settings = tmp_path / "settings.yaml"
    settings.write_text(header(tmp_path) + "accounts_dir: accounts\n")
    checked = followup("validate", str(settings))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "2 account(s): first (hubspot), second (hubspot)" in checked.stdout
    ran = followup("run", "--once", "--settings", str(settings))
    assert ran.returncode == 0, ran.stderr[-3000:]
    status = json.loads(followup("status", "--json", "--settings", str(settings)).stdout)
    assert [(a["account"], a["last_cycle"]["status"]) for a in status["accounts"]] == [
        ("first", "ok"),
        ("second", "ok"),
    ]

    (folder / "c.yaml").write_text(
        "first:\n  crm: hubspot\n  policy: x\n  hubspot: {}\nthird:\n  crm: pipedrive\n"
    )
    broken = followup("validate", str(settings))
    assert broken.returncode == 2
    assert (
        f"{folder / 'c.yaml'}:1:1: accounts.first: defined twice (also at {folder / 'a.yaml'}:1:1)"
        in broken.stdout + broken.stderr
    )
    assert (
        f"{folder / 'c.yaml'}:6:3: accounts.third.crm: Input should be 'hubspot' or 'salesforce'"
        in broken.stdout + broken.stderr
    )


def test_serve_with_a_broken_account_serves_the_others_and_status_shows_why(
    portals: Any, tmp_path: Path
) -> None:
    """One account's policy does not load: ``serve`` starts anyway, runs the other account, records the
    block; ``followup status`` (a table) names both. With every account broken, it refuses to start."""
    bad_policy = tmp_path / "bad.yaml"
    bad_policy.write_text("version: 1\nrules: [\n")
    settings = tmp_path / "settings.yaml"
    good = account("good", 4, portals, tmp_path)
    bad = account("bad", 5, portals, tmp_path).replace(f"policy: {POLICY}", f"policy: {bad_policy}")
    settings.write_text(header(tmp_path) + "accounts:\n" + good + bad)
    process = subprocess.Popen(
        [sys.executable, "-c", "from cli import main; main()", "serve", "--settings", str(settings)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        document: dict[str, Any] = {}
        while time.monotonic() < deadline and process.poll() is None:
            listed = followup("status", "--json", "--settings", str(settings))
            if listed.returncode == 0:
                document = json.loads(listed.stdout)
                rows = {row["account"]: row for row in document["accounts"]}
                if (rows.get("good", {}).get("last_cycle") or {}).get("status") == "ok":
                    break
            time.sleep(1)
        table = followup("status", "--settings", str(settings))
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err[-3000:]
    rows = {row["account"]: row for row in document["accounts"]}
    assert rows["good"]["last_cycle"]["status"] == "ok"
    assert rows["good"]["blocked_reason"] is None
    assert rows["bad"]["last_cycle"] is None
    assert rows["bad"]["blocked_reason"].startswith(f"configuration invalid: {bad_policy}:")
    assert [w["max_cycles"] for w in document["workers"]] == [4]
    assert table.returncode == 0
    assert "good" in table.stdout
    assert "configuration invalid" in table.stdout
    logged = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    # at the start, and again each time the account comes due while it stays broken; never the good one
    assert {e["account"] for e in logged if e["event"] == "configuration_invalid"} == {"bad"}

    settings.write_text(header(tmp_path) + "accounts:\n" + bad)
    refused = followup("serve", "--settings", str(settings))
    assert refused.returncode == 2
    assert str(bad_policy) in refused.stderr
