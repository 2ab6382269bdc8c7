"""The cycle's small parts: apply batches, the crash hook, metrics, and the in-memory CRM's contract."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from connectors.base import Directory, OutcomeStatus
from connectors.memory import InMemoryCrm
from policies.model import ChangeStage, Explanation
from store import StateStore
from sync.crashpoints import CrashPoints
from sync.cycle import CycleResult
from sync.effects import deal_batches
from sync.health import Health, Watched
from sync.metrics import WorkerMetrics
from tests.worker.conftest import OWNERS, PIPELINE, T0, Clock, make_deal, toy_decide


def test_apply_batches_never_split_a_deal() -> None:
    """Every deal's actions land in one batch, whatever the batch size."""
    deals = [make_deal(i) for i in range(1, 6)]
    actions = [a for d in deals for a in toy_decide([d], T0, {}).actions]
    actions = actions + [
        ChangeStage(
            key=f"k{i}",
            deal_id=d.id,
            rule_id="r",
            explanation=Explanation("x"),
            pipeline_id="sales",
            stage_id="lost",
        )
        for i, d in enumerate(deals)
    ]
    batches = deal_batches(actions, 3)
    homes: Counter[str] = Counter()
    for batch in batches:
        for deal_id in {a.deal_id for a in batch}:
            homes[deal_id] += 1
    assert set(homes.values()) == {1}
    assert sum(len(b) for b in batches) == len(actions)


def test_crash_hook_is_inert_without_its_variable_and_rejects_unknown_points() -> None:
    """Without FOLLOWUP_CRASH_AT nothing happens; a misspelt point is an error, not a silent no-op."""
    hook = CrashPoints.from_env({})
    for _ in range(3):
        hook.reached("intents_recorded")
    with pytest.raises(ValueError, match="unknown point"):
        CrashPoints("intent_recorded:1")


def test_metrics_count_cycles_actions_calls_and_cursor_age(tmp_path: Path) -> None:
    """A finished cycle shows up in the Prometheus text: cycles, actions by kind and rule, calls, and the
    age of the cursor the store holds."""
    from prometheus_client import generate_latest

    clock = Clock()
    store = StateStore(f"sqlite:///{tmp_path / 'state.sqlite'}")
    store.store_batch("acme", "r1", [], (), {"seq": "1"}, clock())
    every_minute = Watched("acme", "every 1m", lambda a, b, cap: min(cap, int((b - a).total_seconds() // 60)))
    health = Health(store, [every_minute], clock, stale_runs=2, started_at=clock())
    metrics = WorkerMetrics(clock, health)
    result = CycleResult("r1", "acme", "ok", False)
    result.counts.update({"mirrored": 12})
    result.actions[("create_task", "follow_up", "applied")] += 3
    result.api_calls_by_endpoint.update({"tasks.batch_create": 2})
    metrics.observe(result)
    clock.advance(timedelta(seconds=90))
    text = generate_latest(metrics.registry).decode()
    assert 'followup_cycles_total{account="acme",status="ok"} 1.0' in text
    assert (
        'followup_actions_total{account="acme",kind="create_task",rule="follow_up",status="applied"} 3.0'
        in text
    )
    assert 'followup_api_calls_total{account="acme",endpoint="tasks.batch_create"} 2.0' in text
    assert 'followup_cursor_age_seconds{account="acme"} 90.0' in text
    assert 'followup_mirrored_deals{account="acme"} 12.0' in text
    assert metrics.health()["status"] == "ok"  # one missed run of the two that make it stale
    clock.advance(timedelta(seconds=60))
    assert metrics.health() == {
        "status": "degraded",
        "problems": [
            f"acme: cursor last moved {T0.isoformat()}, 2 or more scheduled runs ago (every 1m); "
            "degraded after 2"
        ],
        "accounts": {"acme": "ok"},
    }
    store.close()


def test_memory_crm_pulls_only_what_changed() -> None:
    """After a full pull, an incremental pull from its cursor returns the changed and removed deals only."""
    crm = InMemoryCrm(owners=OWNERS, pipelines=(PIPELINE,), deals=[make_deal(i) for i in range(1, 6)])
    directory = Directory()
    full = list(crm.pull_changes(directory, None))
    assert sum(len(b.deals) for b in full) == 5
    crm.put_deal(make_deal(2, modified=T0))
    crm.remove_deal("D0003")
    changed = list(crm.pull_changes(directory, full[-1].cursor))
    assert [d.id for b in changed for d in b.deals] == ["D0002"]
    assert [r for b in changed for r in b.removed_deal_ids] == ["D0003"]


def test_memory_crm_refuses_a_stale_guarded_write() -> None:
    """A stage change guarded by an old modification time is a conflict, and writes nothing."""
    deal = make_deal(1)
    crm = InMemoryCrm(owners=OWNERS, pipelines=(PIPELINE,), deals=[deal])
    stale = ChangeStage(
        key="k",
        deal_id=deal.id,
        rule_id="r",
        explanation=Explanation("x"),
        pipeline_id="sales",
        stage_id="lost",
        expected_modified_at=deal.modified_at - timedelta(days=1),
    )
    assert crm.apply([stale])[0].status is OutcomeStatus.CONFLICT
    assert crm.deal(deal.id).stage.id == "open"
