"""Writes at the batch minimum: a first cycle's writes fill each CRM's batches (issue 15, item 1).

A sandbox CRM seeded with enough deals that one kind of write needs more than one CRM batch, the shipped
settings' default ``apply_batch_size``, one ``worker.run_once``. The requests are counted by endpoint on the
sandbox's side; what was written is read from the ledger. Each kind of write must cost what its records
need at the CRM's limit (HubSpot 100 inputs per batch call; Salesforce 200 records per collection, and the
collections of every kind together, 5 collections and queries per Composite call), not one call per small
apply batch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import worker
from bench.bench_cycle import write_minimum
from store import StateStore
from store.ledger import APPLIED
from tests.chaos.test_own_writes import POLICY, TOKEN_ENV, HubSpotCrm, SalesforceCrm

pytestmark = pytest.mark.slow

DEALS = 800
HUBSPOT = "/crm/v3/objects"


@dataclass
class World:
    crm: Any
    settings: Path
    store_url: str


@pytest.fixture(params=["hubspot", "salesforce"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    from crm_sandbox.hubspot import RateLimitConfig, running_hubspot_sandbox
    from crm_sandbox.salesforce import running_salesforce_sandbox

    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    store_url = f"sqlite:///{tmp_path / 'state.sqlite'}"

    def settings_for(crm: Any) -> Path:
        path = tmp_path / "settings.yaml"
        path.write_text(  # no apply_batch_size: the default is what is tested
            f"store: {{url: '{store_url}'}}\n"
            "logging: {level: warning, format: json}\n"
            "accounts:\n"
            "  demo:\n"
            f"    crm: {request.param}\n"
            f"    policy: '{policy}'\n" + crm.connector_section(),
            encoding="utf-8",
        )
        crm.prepare(path)
        return path

    if request.param == "hubspot":
        with running_hubspot_sandbox(seed=7, deals=DEALS, rate_limits=RateLimitConfig.off()) as hs:
            crm: Any = HubSpotCrm(hs)
            yield World(crm, settings_for(crm), store_url)
        os.environ.pop(TOKEN_ENV, None)
    else:
        with running_salesforce_sandbox(seed=7, deals=DEALS) as sf:
            crm = SalesforceCrm(sf)
            yield World(crm, settings_for(crm), store_url)


def _applied(world: World) -> dict[str, list[str]]:
    """Deal ids of the applied writes, by kind of action."""
    store = StateStore(world.store_url)
    try:
        by_kind: dict[str, list[str]] = {}
        for entry in store.ledger("demo"):
            if entry.status == APPLIED:
                by_kind.setdefault(entry.kind, []).append(entry.deal_id)
        return by_kind
    finally:
        store.close()


def _pull_calls(world: World) -> dict[str, int]:
    """The calls of the same first cycle in shadow mode (pull and evaluate, write nothing), on a store of
    its own: what the cycle costs besides its writes."""
    control = world.crm.sandbox.control
    text = world.settings.read_text(encoding="utf-8")
    shadow = world.settings.with_name("shadow.yaml")
    shadow.write_text(
        text.replace(world.store_url, world.store_url.replace("state.sqlite", "shadow.sqlite")).replace(
            "    crm: salesforce\n", "    crm: salesforce\n    shadow: true\n"
        ),
        encoding="utf-8",
    )
    control.reset_stats()
    (result,) = worker.run_once(shadow)
    assert result.status == "ok"
    endpoints: dict[str, int] = control.stats()["endpoints"]
    return endpoints


def test_writes_fill_the_crms_batches(world: World) -> None:
    control = world.crm.sandbox.control
    pull = _pull_calls(world) if isinstance(world.crm, SalesforceCrm) else {}
    control.reset_stats()
    (result,) = worker.run_once(world.settings)
    assert result.status == "ok"
    endpoints: dict[str, int] = control.stats()["endpoints"]
    applied = _applied(world)
    creates = len(applied.get("create_task", []))
    if isinstance(world.crm, HubSpotCrm):
        assert creates > 100, "the test needs more than one batch of task creates"
        # the sandbox counts by route template: batch/create is only task creates here, batch/update
        # both task updates and closes and deal updates
        assert endpoints[f"POST {HUBSPOT}/{{objectType}}/batch/create"] == math.ceil(creates / 100)
        deal_writes = {d for k in ("change_stage", "set_deal_fields") for d in applied.get(k, [])}
        closes = len(applied.get("close_task", [])) + len(applied.get("update_task", []))
        updates = math.ceil(len(deal_writes) / 100) + math.ceil(closes / 100)
        assert endpoints.get(f"POST {HUBSPOT}/{{objectType}}/batch/update", 0) == updates
    else:
        assert creates > 200, "the test needs more than one collection of Task creates"
        # no collection went alone: every one shared a Composite call (at most 5 collections and queries
        # each, which the sandbox enforces as Salesforce does)
        assert endpoints.get("POST /services/data/v{version}/composite/sobjects", 0) == 0
        # the writes' Composite calls (the first cycle's less the same cycle's in shadow mode) are exactly
        # their minimum (bench.bench_cycle.write_minimum: the reads before the writes in calls of 5
        # queries, then the collections and the read-back in calls of 5): every call but the last of
        # each round full
        composite = "POST /services/data/v{version}/composite"
        minimum = write_minimum("salesforce", _applied_records(world))
        assert minimum >= 3, "the test needs more than one Composite call of writes"
        assert endpoints[composite] - pull[composite] == minimum, (endpoints, pull)


def _applied_records(world: World) -> list[tuple[str, str, int]]:
    """``(kind, deal id, CRM records written)`` of the applied writes, as the benchmark counts them."""
    store = StateStore(world.store_url)
    try:
        return [(e.kind, e.deal_id, len(e.crm_ids)) for e in store.ledger("demo") if e.status == APPLIED]
    finally:
        store.close()
