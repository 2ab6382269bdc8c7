"""One clock for the whole cycle: both connectors read the time the worker injects, never their own.

Before, the Salesforce connector ignored it (``worker.build_connector`` passed it to HubSpot only), so its
cursor watermarks, "is this meeting in the past" and the budget window ran on the machine's clock while the
policy decided on the injected one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import worker
from config.settings import read_settings_file
from store import StateStore
from tests.e2e.conftest import NOW, POLICY, write_settings

pytestmark = pytest.mark.slow

AT = NOW + timedelta(minutes=1)  # the worker's clock: frozen, and far from the machine's


def stored_cursor(settings: Path) -> dict[str, str]:
    store = StateStore(read_settings_file(settings).store_url())
    try:
        cursor = store.cursor_state("demo").cursor
    finally:
        store.close()
    assert cursor is not None
    return dict(cursor)


def test_salesforce_reads_the_worker_clock(tmp_path: Path) -> None:
    """A full pull's watermark is the injected time at which it started."""
    from crm_sandbox.salesforce import running_salesforce_sandbox

    with running_salesforce_sandbox(seed=5, deals=10, now=NOW) as sf:
        sf.control.set_clock(AT)
        settings = tmp_path / "settings.yaml"
        settings.write_text(
            "store: {url: 'sqlite:///state.sqlite'}\n"
            "accounts:\n"
            "  demo:\n"
            "    crm: salesforce\n"
            f"    policy: {POLICY}\n"
            "    shadow: true\n"
            "    salesforce:\n"
            f"      instance_url: '{sf.instance_url}'\n"
            f"      login_url: '{sf.instance_url}'\n"
            f"      ca_file: '{sf.ca_file}'\n"
            "      auth:\n"
            "        kind: jwt_bearer\n"
            f"        consumer_key: '{sf.consumer_key}'\n"
            f"        username: '{sf.username}'\n"
            f"        private_key_file: '{sf.private_key_file}'\n",
            encoding="utf-8",
        )
        results = worker.run_once(settings, clock=lambda: AT)
    assert [r.status for r in results] == ["ok"]
    assert datetime.fromisoformat(stored_cursor(settings)["full_at"]) == AT


def test_hubspot_reads_the_worker_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same for HubSpot: its cursor's ``hi`` is the injected start of the pull, in milliseconds."""
    from crm_sandbox.hubspot import running_hubspot_sandbox

    with running_hubspot_sandbox(seed=5, deals=10, now=NOW) as hs:
        hs.control.set_clock(AT)
        monkeypatch.setenv("E2E_CLOCK_TOKEN", hs.access_token)
        settings = write_settings(tmp_path, host=hs.base_url, token_env="E2E_CLOCK_TOKEN", shadow=True)
        results = worker.run_once(settings, clock=lambda: AT)
    assert [r.status for r in results] == ["ok"]
    assert datetime.fromtimestamp(int(stored_cursor(settings)["hi"]) / 1000, UTC) == AT
