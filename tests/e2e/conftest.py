"""End-to-end fixtures: a seeded sandbox CRM over HTTP, a settings file pointing at it, the shipped policy.

Everything goes through the real connectors and SDKs; the worker's clock is the sandbox's clock, so
advancing one advances both.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from crm_sandbox.hubspot import HubSpotSandbox

import worker
from config.settings import read_settings_file
from store import StateStore
from sync.cycle import CycleResult

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "config" / "policies"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday morning


def write_settings(
    folder: Path, *, host: str, token_env: str, extra: str = "", shadow: bool = False, batch: int = 10
) -> Path:
    path = folder / "settings.yaml"
    path.write_text(
        "store: {url: 'sqlite:///state.sqlite'}\n"
        "logging: {level: warning, format: json}\n"
        "accounts:\n"
        "  demo:\n"
        "    crm: hubspot\n"
        f"    policy: {POLICY}\n"
        f"    shadow: {'true' if shadow else 'false'}\n"
        f"    apply_batch_size: {batch}\n"
        "    hubspot:\n"
        f"      host: '{host}'\n"
        f"      access_token_env: {token_env}\n"
        "      tier: enterprise\n"
        "      retry: {attempts: 8, initial_wait: 0.01, max_wait: 0.2, jitter_seed: 1}\n" + extra,
        encoding="utf-8",
    )
    return path


def all_records(basic_api: Any, properties: list[str]) -> Iterator[Any]:
    """Every record of one HubSpot object type, page by page, through the SDK's basic API."""
    after = None
    while True:
        page = basic_api.get_page(limit=100, after=after, properties=properties)
        yield from page.results
        if page.paging is None or page.paging.next is None:
            return
        after = page.paging.next.after


def task_keys(sandbox: Any, *, with_status: bool = False) -> Counter[str]:
    """Idempotency keys of the tasks crm-followup wrote, as a rep's CRM holds them (each should be 1)."""
    from hubspot import HubSpot

    from connectors.hubspot.mapping import parse_task_key

    api = HubSpot(access_token=sandbox.access_token, host=sandbox.base_url)
    keys: Counter[str] = Counter()
    for task in all_records(api.crm.objects.tasks.basic_api, ["hs_task_body", "hs_task_status"]):
        found = parse_task_key(task.properties.get("hs_task_body"))  # plain text or HTML (combined tasks)
        if found is not None:
            status = f":{task.properties.get('hs_task_status')}" if with_status else ""
            keys[found[0] + status] += 1
    return keys


def task_checklists(sandbox: Any) -> dict[str, str]:
    """The checklist state of every combined task crm-followup wrote, by key (docs/crm-fields.md)."""
    from hubspot import HubSpot

    from connectors.checklist import items_line, parse_items
    from connectors.hubspot.mapping import parse_task_key

    api = HubSpot(access_token=sandbox.access_token, host=sandbox.base_url)
    found: dict[str, str] = {}
    for task in all_records(api.crm.objects.tasks.basic_api, ["hs_task_body"]):
        body = task.properties.get("hs_task_body")
        key, items = parse_task_key(body), parse_items(body)
        if key is not None and items:
            found[key[0]] = items_line(items)
    return found


@dataclass
class HubSpotWorld:
    """A running sandbox, the settings that reach it, and the clock both share."""

    sandbox: HubSpotSandbox
    settings: Path
    clock: Callable[[], datetime]

    def cycle(self) -> CycleResult:
        results = worker.run_once(self.settings, clock=self.clock)
        assert len(results) == 1
        return results[0]

    def advance(self, delta: timedelta) -> None:
        self.sandbox.control.set_clock(self.clock() + delta, ticking=True)

    def store(self) -> StateStore:
        return StateStore(read_settings_file(self.settings).store_url())


@pytest.fixture
def hubspot_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubSpotWorld]:
    from crm_sandbox.hubspot import running_hubspot_sandbox

    with running_hubspot_sandbox(seed=7, deals=40, now=NOW) as hs:
        monkeypatch.setenv("E2E_HUBSPOT_TOKEN", hs.access_token)
        settings = write_settings(tmp_path, host=hs.base_url, token_env="E2E_HUBSPOT_TOKEN")
        yield HubSpotWorld(hs, settings, hs.portal.clock.now)
