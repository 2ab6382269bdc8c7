"""A faulty CRM: 5xx, 429 storms, dropped connections and expired tokens still end in the right result."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from crm_sandbox.faults import FaultConfig

import worker
from config.settings import read_settings_file
from store import StateStore
from tests.e2e.conftest import NOW, POLICY, task_keys, write_settings

pytestmark = pytest.mark.slow

FAST = "      search_per_second: 1000\n      ten_second_limit: 100000\n"  # the sandbox's own limits are off


def run_until_done(settings: Path, clock: Any, attempts: int = 6) -> list[str]:
    """Cycles as the scheduler would run them, until one completes; returns every cycle's status."""
    statuses: list[str] = []
    for _ in range(attempts):
        statuses.extend(r.status for r in worker.run_once(settings, clock=clock))
        if statuses[-1] == "ok":
            break
    return statuses


def hubspot_outcome(tmp_path: Path, faults: FaultConfig | None) -> tuple[list[str], Any]:
    from crm_sandbox.hubspot import RateLimitConfig, running_hubspot_sandbox

    tmp_path.mkdir(parents=True, exist_ok=True)
    with running_hubspot_sandbox(seed=5, deals=30, now=NOW, rate_limits=RateLimitConfig.off()) as hs:
        hs.control.set_clock(NOW)
        os.environ["E2E_FAULT_TOKEN"] = hs.access_token
        settings = write_settings(tmp_path, host=hs.base_url, token_env="E2E_FAULT_TOKEN", extra=FAST)
        hs.control.set_faults(faults)
        statuses = run_until_done(settings, hs.control.clock)
        hs.control.set_faults(None)
        statuses.extend(r.status for r in worker.run_once(settings, clock=hs.control.clock))
        return statuses, task_keys(hs, with_status=True)


def test_5xx_429_storms_and_dropped_connections_end_like_a_healthy_run(tmp_path: Path) -> None:
    """Under 5xx, 429 storms and dropped connections the worker ends with the tasks of a fault-free run."""
    faults = FaultConfig(error_rate=0.08, rate_limit_storm=0.04, rate_limit_burst=3, drop_rate=0.04, seed=3)
    statuses, tasks = hubspot_outcome(tmp_path / "faulty", faults)
    _, reference = hubspot_outcome(tmp_path / "healthy", None)
    assert "ok" in statuses
    assert set(statuses) <= {"ok", "retry_later"}
    assert max(tasks.values()) == 1
    assert tasks == reference


def test_expired_private_app_token_blocks_the_account_until_fixed(tmp_path: Path, monkeypatch) -> None:
    """A rejected HubSpot token stops the cycle as fix_configuration, blocks the account, writes nothing."""
    from crm_sandbox.hubspot import running_hubspot_sandbox

    with running_hubspot_sandbox(seed=5, deals=20, now=NOW) as hs:
        monkeypatch.setenv("E2E_BAD_TOKEN", "pat-na1-00000000-0000-0000-0000-000000000000")
        settings = write_settings(tmp_path, host=hs.base_url, token_env="E2E_BAD_TOKEN")
        results = worker.run_once(settings, clock=hs.portal.clock.now)
        assert [r.status for r in results] == ["fix_configuration"]
        assert task_keys(hs) == {}
        store = StateStore(read_settings_file(settings).store_url())
        try:
            assert store.blocked("demo") is not None
        finally:
            store.close()
        monkeypatch.setenv("E2E_BAD_TOKEN", hs.access_token)  # the admin fixes the secret
        assert [r.status for r in worker.run_once(settings, clock=hs.portal.clock.now)] == ["ok"]


def test_salesforce_session_expiring_mid_cycle_is_renewed(tmp_path: Path) -> None:
    """Salesforce sessions expiring every fraction of a second are renewed (JWT bearer); the cycle ends ok."""
    from crm_sandbox.salesforce import running_salesforce_sandbox

    with running_salesforce_sandbox(seed=5, deals=20, now=NOW, faults=FaultConfig(token_ttl_s=0.4)) as sf:
        settings = tmp_path / "settings.yaml"
        settings.write_text(
            "store: {url: 'sqlite:///state.sqlite'}\n"
            "accounts:\n"
            "  demo:\n"
            "    crm: salesforce\n"
            f"    policy: {POLICY}\n"
            "    salesforce:\n"
            f"      instance_url: '{sf.instance_url}'\n"
            f"      login_url: '{sf.instance_url}'\n"
            f"      ca_file: '{sf.ca_file}'\n"
            "      retry: {attempts: 8, initial_wait: 0.01, max_wait: 0.2, jitter_seed: 1}\n"
            "      auth:\n"
            "        kind: jwt_bearer\n"
            f"        consumer_key: '{sf.consumer_key}'\n"
            f"        username: '{sf.username}'\n"
            f"        private_key_file: '{sf.private_key_file}'\n",
            encoding="utf-8",
        )
        results = worker.run_once(settings, clock=sf.org.clock.now)
        assert [r.status for r in results] == ["ok"]
        assert results[0].counts["applied"] > 0
        assert worker.run_once(settings, clock=sf.org.clock.now)[0].status == "ok"
        keys = salesforce_task_keys(sf)
        assert keys
        assert max(keys.values()) == 1


def salesforce_task_keys(sf: Any) -> Counter[str]:
    """Idempotency keys on the org's Tasks, read through simple-salesforce (each should appear once)."""
    import requests
    from simple_salesforce.api import Salesforce

    session = requests.Session()
    session.verify = str(sf.ca_file)
    session.trust_env = False
    api = Salesforce(instance_url=sf.instance_url, session_id=sf.org.issue_token(), session=session)
    rows = api.query_all("SELECT Followup_Key__c FROM Task WHERE Followup_Key__c != null")["records"]
    return Counter(row["Followup_Key__c"] for row in rows)
