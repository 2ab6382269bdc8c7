"""Workers started at the same instant on one state store: one cycle per account, clean exits, no traceback.

Each worker is a real ``followup`` process (``run --once`` or ``serve``) released from one barrier
(``workers.start_together``) against a HubSpot sandbox whose requests are slowed down, so the first
worker's cycle is still running when the others ask for the account's lease. Before the fixes a fresh
store made all but one worker die in the schema migration (SQLite "table ... already exists",
PostgreSQL UniqueViolation), an already migrated one made the loser die on ``accounts.name`` with a
traceback logged as ``cycle_finished status=ok``, and a skipped cycle (``lease_held``) exited 1.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from crm_sandbox.faults import FaultConfig

from store import StateStore
from tests.chaos.workers import REPO, Finished, start_together

pytestmark = pytest.mark.slow

POLICY = REPO / "config" / "policies"
ACCOUNT = "demo"
TOKEN_ENV = "CHAOS_START_TOKEN"
POSTGRES_URL_ENV = "FOLLOWUP_TEST_POSTGRES_URL"


@pytest.fixture(scope="module")
def hubspot() -> Iterator[Any]:
    """A HubSpot sandbox where every request takes 30 ms: a cycle lasts seconds, so the workers overlap."""
    from datetime import UTC, datetime

    from crm_sandbox.hubspot import running_hubspot_sandbox

    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with running_hubspot_sandbox(seed=11, deals=12, now=now, faults=FaultConfig(latency_ms=30)) as hs:
        yield hs


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store nobody opened yet: a SQLite file in a folder that does not exist, or a new database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'followup.sqlite'}"
        return
    base = os.environ.get(POSTGRES_URL_ENV)
    if not base:
        pytest.skip(f"set {POSTGRES_URL_ENV} to run the concurrent start on PostgreSQL too")
    from sqlalchemy import create_engine, make_url, text

    name = f"followup_chaos_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def write_settings(folder: Path, store_url: str, host: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "settings.yaml"
    path.write_text(
        f"store: {{url: '{store_url}'}}\n"
        "metrics: {port: 0}\n"
        "logging: {level: info, format: json}\n"
        "accounts:\n"
        f"  {ACCOUNT}:\n"
        "    crm: hubspot\n"
        f"    policy: {POLICY}\n"
        "    schedule: {every: 1h}\n"
        "    hubspot:\n"
        f"      host: '{host}'\n"
        f"      access_token_env: {TOKEN_ENV}\n"
        "      tier: enterprise\n"
        "      retry: {attempts: 8, initial_wait: 0.01, max_wait: 0.2, jitter_seed: 1}\n",
        encoding="utf-8",
    )
    return path


def events(finished: Finished) -> list[dict[str, Any]]:
    """The JSON log lines of one worker (the console renderer is off: ``format: json``)."""
    found = []
    for line in finished.output.splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


def assert_clean(finished: list[Finished]) -> None:
    """Exit 0, and nothing that looks like a crash: no traceback printed, no exception logged."""
    for worker in finished:
        assert "Traceback" not in worker.output, worker.output[-4000:]
        assert not [e for e in events(worker) if "exception" in e or e.get("level") == "error"]
        assert worker.returncode == 0, worker.output[-4000:]


def event_counts(finished: list[Finished]) -> Counter[str]:
    return Counter(e["event"] for worker in finished for e in events(worker))


def runs_of(store_url: str) -> list[str]:
    store = StateStore(store_url)
    try:
        return [run.status for run in store.runs(ACCOUNT)]
    finally:
        store.close()


@pytest.mark.parametrize("workers", [2, 3])
def test_run_once_workers_started_together_on_a_fresh_store(
    workers: int, store_url: str, hubspot: Any, tmp_path: Path
) -> None:
    """One worker migrates and runs the cycle; the others wait for the migration and skip: lease_held."""
    settings = write_settings(tmp_path, store_url, hubspot.base_url)
    started = start_together(
        [["run", "--once", "--settings", str(settings)]] * workers,
        tmp_path / "workers",
        env={TOKEN_ENV: hubspot.access_token},
    )
    finished = [s.finish(timeout=240) for s in started]
    assert_clean(finished)
    counts = event_counts(finished)
    assert counts["cycle_finished"] == 1
    assert counts["cycle_skipped_lease_held"] == workers - 1
    assert runs_of(store_url) == ["ok"]
    if store_url.startswith("sqlite"):
        database = Path(store_url.removeprefix("sqlite:///"))
        assert database.stat().st_mode & 0o777 == 0o600  # it holds contact names
        assert database.parent.stat().st_mode & 0o777 == 0o700


def test_run_once_workers_started_together_on_a_migrated_store(
    store_url: str, hubspot: Any, tmp_path: Path
) -> None:
    """A migrated store without the account yet: exactly one worker records it and runs, none crashes."""
    StateStore(store_url).close()  # migrated, no account row
    settings = write_settings(tmp_path, store_url, hubspot.base_url)
    started = start_together(
        [["run", "--once", "--settings", str(settings)]] * 3,
        tmp_path / "workers",
        env={TOKEN_ENV: hubspot.access_token},
    )
    finished = [s.finish(timeout=240) for s in started]
    assert_clean(finished)
    assert event_counts(finished)["cycle_skipped_lease_held"] == 2
    assert runs_of(store_url) == ["ok"]


def test_serve_workers_started_together(store_url: str, hubspot: Any, tmp_path: Path) -> None:
    """Three schedulers on one fresh store: one runs the account's first cycle, SIGTERM stops all with 0."""
    import time

    settings = write_settings(tmp_path, store_url, hubspot.base_url)
    started = start_together(
        [["serve", "--settings", str(settings)]] * 3,
        tmp_path / "workers",
        env={TOKEN_ENV: hubspot.access_token},
    )
    try:
        deadline = time.monotonic() + 240  # liveness only
        while time.monotonic() < deadline:
            text = "".join(s.log_lines() for s in started)
            if text.count('"cycle_finished"') + text.count('"cycle_skipped_lease_held"') >= 3:
                break
            if any(s.process.poll() is not None for s in started):
                break
            time.sleep(0.1)
    finally:
        for s in started:
            s.terminate()
    finished = [s.finish(timeout=120) for s in started]
    assert_clean(finished)
    counts = event_counts(finished)
    assert counts["cycle_finished"] == 1
    assert counts["cycle_skipped_lease_held"] == 2
    assert counts["worker_stopped"] == 3
    assert runs_of(store_url) == ["ok"]
