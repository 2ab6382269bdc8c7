"""Crash safety at full write batches: the default ``apply_batch_size`` puts a whole first cycle's writes
(600 deals: several HubSpot batches of each kind) under one set of intents. Killed after the intents are
committed (nothing written), after the CRM wrote them all (no outcome recorded) or after the outcomes, and
restarted, the worker leaves the CRM exactly as an uninterrupted run does: no duplicate, nothing missing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import worker
from config.settings import AccountSettings
from tests.e2e.conftest import NOW, write_settings
from tests.e2e.test_crash import UNLIMITED, crash_and_restart, crm_state

pytestmark = pytest.mark.slow

DEALS = 600
BATCH = AccountSettings.model_fields[
    "apply_batch_size"
].default  # every action of the first cycle in one apply
WRITES = ("create", "update")
CRASH_POINTS = ["intents_recorded:1", "crm_applied:1", "outcomes_recorded:1"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from crm_sandbox.hubspot import RateLimitConfig, running_hubspot_sandbox

    with running_hubspot_sandbox(seed=11, deals=DEALS, now=NOW, rate_limits=RateLimitConfig.off()) as hs:
        hs.control.set_clock(NOW)
        hs.control.snapshot("pristine")
        os.environ["E2E_CRASH_FULL_TOKEN"] = hs.access_token
        folder = tmp_path_factory.mktemp("reference")
        settings = write_settings(
            folder, host=hs.base_url, token_env="E2E_CRASH_FULL_TOKEN", batch=BATCH, extra=UNLIMITED
        )
        hs.control.reset_stats()
        worker.run_once(settings, clock=hs.control.clock)
        endpoints = hs.control.stats()["endpoints"]
        writes = max(endpoints.get(f"POST /crm/v3/objects/{{objectType}}/batch/{w}", 0) for w in WRITES)
        worker.run_once(settings, clock=hs.control.clock)
        yield {"sandbox": hs, "reference": crm_state(hs), "write_calls": writes}
        os.environ.pop("E2E_CRASH_FULL_TOKEN", None)


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_crash_around_a_full_batch_leaves_no_duplicate(
    world: dict[str, Any], point: str, tmp_path: Path
) -> None:
    assert world["write_calls"] > 1, "the batch should need several CRM calls of one kind"
    hs = world["sandbox"]
    hs.control.restore("pristine")
    hs.control.set_clock(NOW)
    settings = write_settings(
        tmp_path, host=hs.base_url, token_env="E2E_CRASH_FULL_TOKEN", batch=BATCH, extra=UNLIMITED
    )
    crash_and_restart(point, settings, hs, timeout=300)

    state = crm_state(hs)
    assert max(state["tasks"].values(), default=1) == 1, "a task was written twice"
    assert state["tasks"] == world["reference"]["tasks"]
    assert state["deals"] == world["reference"]["deals"]
