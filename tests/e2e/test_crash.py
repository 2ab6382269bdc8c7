"""Kill the worker (SIGKILL) at 20+ points of a cycle, restart it: the CRM is as if it never crashed.

The shipped policy combines requests into one task per deal (``tasks.combine``), so the comparison covers
combined tasks too: each written once, with the same checklist state as in the uninterrupted run.

The child process runs a real cycle against the HubSpot sandbox and kills itself at the point named by
``FOLLOWUP_CRASH_AT`` (``sync/crashpoints.py``): before and after each commit, and between the CRM write
of a batch and the ledger update. The restart (in this process, as a new worker) must leave the CRM with
no duplicate and no missing action compared with a run that never crashed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import worker
from config.settings import read_settings_file
from store import StateStore
from tests.e2e.conftest import NOW, REPO, all_records, task_checklists, task_keys, write_settings

pytestmark = pytest.mark.slow

DEALS = 30
BATCH = 4  # small apply batches: about ten of them, so the crash points fall between many CRM writes
UNLIMITED = "      search_per_second: 1000\n      ten_second_limit: 100000\n"  # the sandbox's limits are off
CRASH_POINTS = [
    "lease_acquired:1",
    "directory_read:1",
    "batch_stored:1",
    "pull_finished:1",
    "audit_recorded:1",
    *(f"intents_recorded:{n}" for n in (1, 3, 5, 7)),
    *(f"crm_applied:{n}" for n in (1, 2, 3, 4, 5, 6)),
    *(f"outcomes_recorded:{n}" for n in (1, 2, 4, 6, 8)),
    "run_finished:1",
]
assert len(CRASH_POINTS) >= 20


def crm_state(sandbox: Any) -> dict[str, Any]:
    """What a rep would see: our tasks by key and status, and every deal's stage and follow-up state."""
    from hubspot import HubSpot

    api = HubSpot(access_token=sandbox.access_token, host=sandbox.base_url)
    deals = {
        d.id: (d.properties.get("dealstage"), d.properties.get("followup_state"))
        for d in all_records(api.crm.deals.basic_api, ["dealstage", "followup_state"])
    }
    return {
        "tasks": task_keys(sandbox, with_status=True),
        "checklists": task_checklists(sandbox),
        "deals": deals,
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One sandbox for the module, frozen at NOW, with a pristine snapshot and the state of a clean run."""
    from crm_sandbox.hubspot import RateLimitConfig, running_hubspot_sandbox

    # The clock stands still (so every run decides alike), and so would HubSpot's rate-limit windows.
    with running_hubspot_sandbox(seed=11, deals=DEALS, now=NOW, rate_limits=RateLimitConfig.off()) as hs:
        hs.control.set_clock(NOW)
        hs.control.snapshot("pristine")
        os.environ["E2E_CRASH_TOKEN"] = hs.access_token
        folder = tmp_path_factory.mktemp("reference")
        settings = write_settings(
            folder, host=hs.base_url, token_env="E2E_CRASH_TOKEN", batch=BATCH, extra=UNLIMITED
        )
        for _ in range(2):
            worker.run_once(settings, clock=hs.control.clock)
        reference = crm_state(hs)
        assert reference["checklists"], "the reference run should write combined tasks (tasks.combine)"
        yield {"sandbox": hs, "reference": reference}
        os.environ.pop("E2E_CRASH_TOKEN", None)


def crash_and_restart(point: str, settings: Path, hs: Any, *, timeout: float) -> None:
    """A worker process SIGKILLed at ``point``, then a restarted cycle (ok) and one more to converge."""
    env = {**os.environ, "FOLLOWUP_CRASH_AT": point, "PYTHONPATH": str(REPO)}
    child = subprocess.run(
        [sys.executable, "-m", "tests.e2e.crash_child", str(settings), hs.base_url],
        cwd=REPO,
        env=env,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    restarted = worker.run_once(settings, clock=hs.control.clock)
    assert [r.status for r in restarted] == ["ok"]
    worker.run_once(settings, clock=hs.control.clock)  # converge, as the reference did


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_crash_then_restart_leaves_no_duplicate_and_nothing_missing(
    world: dict[str, Any], point: str, tmp_path: Path
) -> None:
    """A worker killed at ``point`` and restarted ends with exactly the CRM state of an uninterrupted run."""
    hs = world["sandbox"]
    hs.control.restore("pristine")
    hs.control.set_clock(NOW)
    settings = write_settings(
        tmp_path, host=hs.base_url, token_env="E2E_CRASH_TOKEN", batch=BATCH, extra=UNLIMITED
    )
    crash_and_restart(point, settings, hs, timeout=120)

    state = crm_state(hs)
    assert max(state["tasks"].values(), default=1) == 1, "a task was written twice"
    assert state["tasks"] == world["reference"]["tasks"]
    assert state["checklists"] == world["reference"]["checklists"]  # the same items, in the same states
    assert state["deals"] == world["reference"]["deals"]
    store = StateStore(read_settings_file(settings).store_url())
    try:
        assert store.pending_intents("demo") == []
    finally:
        store.close()
