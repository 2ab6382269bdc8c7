"""A combined task (``tasks.combine``) through the worker's cycle, on the in-memory CRM with the real engine:
one write per conversation, the audit trail names every rule on it, the mirror keeps its checklist."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from functools import partial

from connectors.memory import InMemoryCrm
from policies.model import CloseReason, CreateTask, DeferredAction, Plan
from policies.planner import plan
from store import StateStore
from sync.cycle import Cycle, CycleOptions, run_cycle
from sync.effects import audit_entries
from tests.unit.builders import NOW, OWNER, policy
from tests.unit.test_combine import COMPLETE, three_needs
from tests.worker.conftest import Clock

RULES = ("agreed_interval", "next_step", "decision_maker")


def _cycle(crm: InMemoryCrm, store: StateStore, clock: Clock) -> Cycle:
    return Cycle(
        account="acme",
        connector=crm,
        store=store,
        decide=partial(plan, policy()),
        clock=clock,
        holder="test-host:1",
        options=CycleOptions(apply_batch_size=3, evaluate_chunk=4),
    )


def test_one_write_per_conversation_audited_for_every_rule_and_updated_in_place(store: StateStore) -> None:
    clock = Clock(NOW)
    crm = InMemoryCrm(owners=(OWNER,), deals=[three_needs()], clock=clock)
    result = run_cycle(_cycle(crm, store, clock))
    assert result.status == "ok"
    assert result.actions == {("create_task", "conversation", "applied"): 1}
    (record,) = crm.tasks()
    assert [i.rule_id for i in record.task.items] == list(RULES)
    audited = {e["rule_id"]: e["action_keys"] for e in store.audit("acme", deal_id="combo")}
    assert {rule: audited.get(rule) for rule in RULES} == {rule: [record.task.key] for rule in RULES}
    (mirrored,) = store.mirror_deals("acme", ["combo"]).values()
    assert mirrored.auto_tasks[0].items == record.task.items

    clock.advance(timedelta(minutes=30))
    assert run_cycle(_cycle(crm, store, clock)).counts["new"] == 0

    crm.put_deal(replace(crm.deal("combo"), next_step=COMPLETE))  # the rep fills in the next step
    clock.advance(timedelta(hours=1))
    result = run_cycle(_cycle(crm, store, clock))
    assert result.actions == {("update_task", "conversation", "applied"): 1}
    (record,) = crm.tasks()
    assert record.task.is_open
    assert {i.rule_id: i.closed for i in record.task.items}["next_step"] is CloseReason.SETTLED
    assert "[x] Agree the next step" in record.body
    assert run_cycle(_cycle(crm, store, clock)).counts["new"] == 0


def test_a_deferred_combined_task_is_audited_as_deferred_for_every_rule() -> None:
    """Held back by a budget, the combined task still shows up in the audit of each of its rules."""
    decision = plan(policy(), [three_needs()], NOW, {"o1": OWNER}).decisions[0]
    (task,) = decision.actions
    assert isinstance(task, CreateTask)
    held = Plan(actions=(), deferred=(DeferredAction(task, NOW.date(), "cap"),), decisions=(decision,))
    entries = {e.rule_id: e for e in audit_entries(held, [])}
    assert {rule: (entries[rule].outcome, entries[rule].action_keys) for rule in RULES} == dict.fromkeys(
        RULES, ("deferred", (task.key,))
    )
