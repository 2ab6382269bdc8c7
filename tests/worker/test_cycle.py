"""The cycle on an in-memory CRM and a temp SQLite store: what it writes, and what it never writes twice."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import timedelta

from connectors.base import ActionOutcome, BeforeCall
from connectors.errors import FixConfiguration, RetryLater
from connectors.memory import InMemoryCrm
from policies.model import Action
from store import StateStore
from sync.cycle import CycleOptions, run_cycle
from tests.worker.conftest import LOST, OWNERS, PIPELINE, make_deal


def test_first_cycle_creates_one_task_per_open_deal(crm: InMemoryCrm, make_cycle) -> None:
    """A first cycle pulls everything and creates the follow-up task of every open deal once."""
    result = run_cycle(make_cycle())
    assert result.status == "ok"
    assert result.counts["pulled"] == 10
    assert result.counts["applied"] == 10
    assert sorted(t.deal_id for t in crm.tasks()) == sorted(d.id for d in crm.deals())


def test_second_cycle_without_changes_writes_nothing(crm: InMemoryCrm, make_cycle) -> None:
    """After a first cycle, a second one with no CRM change applies nothing and calls apply not at all."""
    run_cycle(make_cycle())
    before = crm.usage().calls_by_endpoint.get("apply", 0)
    result = run_cycle(make_cycle())
    assert result.counts["new"] == 0
    assert len(crm.tasks()) == 10
    assert crm.usage().calls_by_endpoint.get("apply", 0) == before


def test_time_based_rule_fires_without_crm_changes(crm: InMemoryCrm, make_cycle, clock) -> None:
    """Advancing the clock past 60 idle days closes deals although nothing changed in the CRM."""
    run_cycle(make_cycle())
    run_cycle(make_cycle())
    clock.advance(timedelta(days=70))
    result = run_cycle(make_cycle())
    assert result.actions[("change_stage", "close_idle", "applied")] == 10
    assert all(d.stage.id == "lost" for d in crm.deals())


def test_crm_change_between_cycles_is_picked_up(crm: InMemoryCrm, make_cycle, store: StateStore) -> None:
    """A deal added and one removed in the CRM between cycles reach the mirror in the next cycle."""
    run_cycle(make_cycle())
    crm.put_deal(make_deal(99))
    crm.remove_deal("D0001")
    result = run_cycle(make_cycle())
    assert result.counts["pulled"] >= 1
    assert result.actions[("create_task", "follow_up", "applied")] == 1
    assert "D0099" in store.mirror_deals("acme", ["D0099"])
    assert store.mirror_deals("acme", ["D0001"]) == {}


def test_closed_deal_leaves_the_mirror(crm: InMemoryCrm, make_cycle, store: StateStore) -> None:
    """A deal closed in the CRM with no open task of ours is dropped from the mirror."""
    run_cycle(make_cycle())
    crm.put_deal(make_deal(3, stage=LOST))
    run_cycle(make_cycle())
    assert store.mirror_deals("acme", ["D0003"]) == {}


def test_shadow_mode_decides_and_audits_but_writes_nothing(crm: InMemoryCrm, make_cycle, store) -> None:
    """In shadow mode the plan is audited and counted, and the CRM stays untouched."""
    result = run_cycle(make_cycle(shadow=True))
    assert result.counts["shadow"] == 10
    assert crm.tasks() == []
    assert "apply" not in crm.usage().calls_by_endpoint
    assert len(store.audit("acme")) == 10
    again = run_cycle(make_cycle(shadow=True))
    assert again.counts["shadow"] == 0


def test_enforcing_after_shadow_applies_the_decisions(crm: InMemoryCrm, make_cycle) -> None:
    """Switching an account from shadow to enforce applies what shadow mode only logged."""
    run_cycle(make_cycle(shadow=True))
    result = run_cycle(make_cycle())
    assert result.counts["applied"] == 10
    assert len(crm.tasks()) == 10


def test_retry_later_stops_cleanly_and_resumes(crm: InMemoryCrm, make_cycle, store: StateStore) -> None:
    """A CRM outage mid-apply ends the cycle as retry_later; the next one finishes it, no duplicates."""
    crm.fail("apply", RetryLater("503 from CRM", status=503), times=1)
    first = run_cycle(make_cycle())
    assert first.status == "retry_later"
    second = run_cycle(make_cycle())
    assert second.status == "ok"
    keys = Counter(t.task.key for t in crm.tasks())
    assert len(keys) == 10
    assert max(keys.values()) == 1
    assert store.pending_intents("acme") == []


def test_intent_left_by_a_crash_is_found_in_the_crm(crm: InMemoryCrm, make_cycle, store, clock) -> None:
    """An intent committed before a crash whose write reached the CRM is marked applied, not re-applied."""
    run_cycle(make_cycle())
    crm.put_deal(make_deal(50))
    result_plan = make_cycle()
    # Simulate the crash window: record the intent and write to the CRM, but lose the outcome.
    from tests.worker.conftest import toy_decide

    action = toy_decide([crm.deal("D0050")], clock(), {}).actions[0]
    store.record_actions("acme", "crashed-run", [action], "intent", clock())
    crm.apply([action])
    result = run_cycle(result_plan)
    assert result.counts["recovered"] == 1
    assert [t.task.key for t in crm.tasks()].count(action.key) == 1
    assert store.pending_intents("acme") == []


def test_fix_configuration_blocks_the_account(crm: InMemoryCrm, make_cycle, store: StateStore) -> None:
    """An auth problem ends the cycle as fix_configuration and records the block with its fingerprint."""
    crm.fail("read_directory", FixConfiguration("401 from CRM: token rejected"))
    result = run_cycle(make_cycle(fingerprint="abc"))
    assert result.status == "fix_configuration"
    blocked = store.blocked("acme")
    assert blocked is not None
    assert blocked.fingerprint == "abc"


def test_stop_request_ends_between_batches(crm: InMemoryCrm, make_cycle, store: StateStore) -> None:
    """A stop request is honoured at the next batch boundary, and the next cycle completes the rest."""
    calls = iter([False, False, True])
    result = run_cycle(make_cycle(should_stop=lambda: next(calls, True)))
    assert result.status == "stopped"
    later = run_cycle(make_cycle())
    assert later.status == "ok"
    assert len({t.task.key for t in crm.tasks()}) == 10 == len(crm.tasks())


def test_lease_held_by_a_live_worker_skips_the_cycle(make_cycle, store: StateStore, clock) -> None:
    """A cycle does not run while another live worker holds the account's lease."""
    store.ensure_account("acme", "memory", clock())
    assert store.acquire_lease("acme", "other-host:42", clock(), timedelta(minutes=10))
    result = run_cycle(make_cycle())
    assert result.status == "lease_held"


def test_an_interrupted_full_pull_resumes_where_it_stopped(crm: InMemoryCrm, make_cycle, store) -> None:
    """A first pull cut after two of its three batches keeps them; the next cycle pulls only the third.

    Before, an interrupted full pull started over, so a CRM that always fails somewhere in a long first
    pull (a 429 storm every few hundred calls) never finished it.
    """
    crm.fail("pull_page", RetryLater("rate limited", status=429), after=2)
    first = run_cycle(make_cycle())
    assert (first.status, first.counts["pulled"]) == ("retry_later", 8)
    second = run_cycle(make_cycle())
    assert second.status == "ok"
    assert (second.counts["pulled"], second.counts["mirrored"], second.counts["dropped"]) == (2, 10, 0)
    assert len(crm.tasks()) == 10
    state = store.cursor_state("acme")
    assert (state.full_pull_run, state.cursor) == (None, {"seq": "10"})  # finished: incremental from here


def test_audit_records_fired_rules_with_their_reason(make_cycle, store: StateStore) -> None:
    """Each planned action's rule verdict is in the audit trail with its reason and action key."""
    run_cycle(make_cycle())
    entries = store.audit("acme", deal_id="D0001")
    assert [(e["rule_id"], e["explanation"]["reason"]) for e in entries] == [
        ("follow_up", "no open follow-up task")
    ]
    assert len(entries[0]["action_keys"]) == 1


def _owner_canary(owners: tuple[str, ...]):
    from policies.policy_file import Rollout
    from policies.rollout import cohort

    rollout = Rollout(owners=owners)
    return lambda deal, owner: cohort(rollout, "acme", deal, owner, shadow=False)


def test_a_rollout_writes_for_its_cohort_and_holds_the_rest(crm: InMemoryCrm, make_cycle, store) -> None:
    """Owner o1 enforced: its five deals get tasks; o2's five are held in shadow, with their cohort."""
    result = run_cycle(make_cycle(cohort=_owner_canary(("o1",))))
    assert (result.counts["applied"], result.counts["shadow"]) == (5, 5)
    assert {crm.deal(t.deal_id).owner_id for t in crm.tasks()} == {"o1"}
    rows = {(e.status, e.deal_id) for e in store.ledger("acme")}
    assert {deal for status, deal in rows if status == "shadow"} == {f"D{i:04d}" for i in range(2, 11, 2)}
    cohorts = Counter((a["mode"], a["cohort"]) for a in store.audit("acme"))
    assert cohorts == Counter({("enforce", "owner"): 5, ("shadow", "outside"): 5})


def test_an_account_in_shadow_holds_every_deal_whatever_the_rollout(
    crm: InMemoryCrm, make_cycle, store
) -> None:
    """``shadow: true`` (or ``mode: shadow``) keeps meaning everything in shadow: the worker passes no
    rollout then, and a cycle that gets one anyway still writes nothing."""
    result = run_cycle(make_cycle(shadow=True, cohort=_owner_canary(("o1", "o2"))))
    assert result.counts["shadow"] == 10
    assert crm.tasks() == []
    assert {(a["mode"], a["cohort"]) for a in store.audit("acme")} == {("shadow", "all")}


class _BatchRecordingCrm(InMemoryCrm):
    """The in-memory CRM, remembering how many actions each ``apply`` carried."""

    batches: list[int]

    def apply(
        self, actions: Sequence[Action], *, before_each_call: BeforeCall | None = None
    ) -> list[ActionOutcome]:
        self.batches.append(len(actions))
        return super().apply(actions, before_each_call=before_each_call)


def test_new_actions_gather_across_chunks_into_full_apply_batches(make_cycle, clock) -> None:
    """Small evaluation chunks do not make small writes: actions wait for a full apply batch (intents are
    still committed before each apply), only the last batch of the cycle is part-full."""
    crm = _BatchRecordingCrm(
        owners=OWNERS,
        pipelines=(PIPELINE,),
        deals=[make_deal(i, owner=f"o{i % 2 + 1}") for i in range(1, 24)],
        clock=clock,
        page_size=4,
    )
    crm.batches = []
    options = CycleOptions(apply_batch_size=6, evaluate_chunk=4)  # 23 actions, chunks of about 4
    result = run_cycle(make_cycle(connector=crm, options=options))
    assert result.counts["applied"] == 23
    assert crm.batches == [6, 6, 6, 5]
