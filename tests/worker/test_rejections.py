"""One bad deal never stops an account: rejected in evaluation or mapping, logged, audited, counted.

The cycle runs on the in-memory CRM and a real state store; ``decide`` is the toy policy of conftest.py
wrapped so that one deal makes it raise, the way a bug or an unforeseen value in the engine would.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from prometheus_client import generate_latest
from structlog.testing import capture_logs

from connectors.base import ChangeBatch, Cursor, Directory, KnownDeals, RejectedRecord
from connectors.memory import InMemoryCrm
from policies.model import Deal, Owner, Plan
from policies.planner import plan
from store import StateStore
from sync.cycle import run_cycle
from sync.directory import with_known_time_zones
from sync.metrics import WorkerMetrics
from tests.unit.builders import deal as engine_deal
from tests.unit.builders import policy
from tests.worker.conftest import OWNERS, PIPELINE, toy_decide


def _poisoned(bad_id: str):
    def decide(deals: Sequence[Deal], now: datetime, owners: Mapping[str, Owner]) -> Plan:
        if any(d.id == bad_id for d in deals):
            raise OverflowError("date value out of range")
        return toy_decide(deals, now, owners)

    return decide


def test_a_deal_the_engine_cannot_evaluate_is_rejected_and_the_rest_proceeds(
    crm: InMemoryCrm, make_cycle, store: StateStore
) -> None:
    """The chunk holding the bad deal is planned again without it; every other deal gets its task."""
    with capture_logs() as logs:
        result = run_cycle(make_cycle(decide=_poisoned("D0003")))
    assert result.status == "ok"
    assert sorted({t.deal_id for t in crm.tasks()}) == [d.id for d in crm.deals() if d.id != "D0003"]
    assert result.counts["rejected"] == 1
    assert result.rejected == {"evaluation_failed": 1}
    (line,) = [e for e in logs if e["event"] == "record_rejected"]
    assert (line["record_id"], line["reason"], line["field"]) == ("D0003", "evaluation_failed", None)
    assert "OverflowError" in line["detail"]
    (row,) = [a for a in store.audit("acme", deal_id="D0003") if a["rule_id"] == "record_rejected"]
    assert row["outcome"] == "rejected"
    assert "OverflowError" in row["explanation"]["reason"]


def test_the_normal_path_plans_each_chunk_once(crm: InMemoryCrm, make_cycle) -> None:
    """Without a failure the planner is called once per chunk: the isolation costs nothing."""
    calls: list[int] = []

    def counting(deals: Sequence[Deal], now: datetime, owners: Mapping[str, Owner]) -> Plan:
        calls.append(len(deals))
        return toy_decide(deals, now, owners)

    run_cycle(make_cycle(decide=counting))
    assert calls == [5, 5]  # one call per chunk: the chunks go owner by owner, five deals each


class _RejectingCrm(InMemoryCrm):
    """The in-memory CRM, with one deal its mapping cannot read (as a connector reports it)."""

    def __init__(self, *, bad_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bad_id = bad_id

    def pull_changes(
        self, directory: Directory, cursor: Cursor | None, known: KnownDeals | None = None
    ) -> Iterator[ChangeBatch]:
        for batch in super().pull_changes(directory, cursor, known):
            bad = tuple(
                RejectedRecord("deal", d.id, "out_of_range", "agreed_interval_days", f"deal {d.id}: too long")
                for d in batch.deals
                if d.id == self.bad_id
            )
            yield dataclasses.replace(
                batch, deals=tuple(d for d in batch.deals if d.id != self.bad_id), rejected=bad
            )


def test_a_rejected_deal_leaves_the_mirror(crm: InMemoryCrm, make_cycle, store: StateStore, clock) -> None:
    """A deal mirrored earlier and rejected by a later pull is not judged on its stale mirror row."""
    poisoned = _RejectingCrm(owners=OWNERS, pipelines=(PIPELINE,), clock=clock, bad_id="")
    for deal in crm.deals():
        poisoned.put_deal(deal)
    run_cycle(make_cycle(connector=poisoned))
    assert store.mirror_deals("acme", ["D0004"])
    poisoned.bad_id = "D0004"
    poisoned.put_deal(poisoned.deal("D0004"))  # a rep's edit: the next (incremental) pull rejects it
    with capture_logs() as logs:
        result = run_cycle(make_cycle(connector=poisoned))
    assert result.status == "ok"
    assert store.mirror_deals("acme", ["D0004"]) == {}
    (line,) = [e for e in logs if e["event"] == "record_rejected"]
    assert (line["field"], line["reason"]) == ("agreed_interval_days", "out_of_range")
    assert result.rejected == {"out_of_range": 1}


def test_rejections_are_a_prometheus_counter_by_reason(crm: InMemoryCrm, make_cycle, clock) -> None:
    """``followup_records_rejected_total{account,reason}`` counts what the cycles rejected."""
    metrics = WorkerMetrics(clock)
    metrics.observe(run_cycle(make_cycle(decide=_poisoned("D0005"))))
    text = generate_latest(metrics.registry).decode()
    assert 'followup_records_rejected_total{account="acme",reason="evaluation_failed"} 1.0' in text


def test_an_unknown_owner_time_zone_falls_back_with_one_warning_per_owner() -> None:
    """An owner whose zone zoneinfo does not know gets None (the policy's zone); known zones stay."""
    directory = Directory(
        owners={
            "o1": Owner("o1", time_zone="Mars/Olympus_Mons"),
            "o2": Owner("o2", time_zone="Europe/Berlin"),
            "o3": Owner("o3", time_zone="../../etc/passwd"),
            "o4": Owner("o4"),
        }
    )
    with capture_logs() as logs:
        usable = with_known_time_zones(directory)
    assert {k: o.time_zone for k, o in usable.owners.items()} == {
        "o1": None,
        "o2": "Europe/Berlin",
        "o3": None,
        "o4": None,
    }
    warned = [(e["owner_id"], e["time_zone"]) for e in logs if e["event"] == "owner_time_zone_unknown"]
    assert warned == [("o1", "Mars/Olympus_Mons"), ("o3", "../../etc/passwd")]


def test_a_cycle_with_an_unknown_owner_zone_runs_the_real_engine(make_cycle, clock) -> None:
    """With the real planner, an owner zone zoneinfo does not know no longer fails the account."""
    crm = InMemoryCrm(
        owners=(Owner("o1", "Ann", time_zone="Mars/Olympus_Mons"), Owner("o2", "Bo")),
        pipelines=(),
        deals=[],
        clock=clock,
    )
    for i in range(3):
        crm.put_deal(dataclasses.replace(engine_deal(f"d{i}"), owner_id="o1"))
    with capture_logs() as logs:
        result = run_cycle(make_cycle(connector=crm, decide=partial(plan, policy())))
    assert result.status == "ok", result.error
    assert result.counts["evaluated"] == 3
    assert [e["owner_id"] for e in logs if e["event"] == "owner_time_zone_unknown"] == ["o1"]
