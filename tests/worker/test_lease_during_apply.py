"""A worker that loses its lease part way through an apply sends nothing more to the CRM.

The fleet's freeze tests found it under load: a worker frozen after the cycle's last lease check, during
the connector's reads before its writes, resumed into writes for an account another worker had taken over
(and whose recovery had already applied the same intents): a duplicate task. Here the takeover happens
deterministically inside the apply, at the CRM's check before its writes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from connectors.base import ActionOutcome, BeforeCall
from connectors.memory import InMemoryCrm
from policies.model import Action
from store import StateStore
from sync.cycle import CycleOptions, run_cycle
from tests.worker.conftest import OWNERS, PIPELINE, Clock, make_deal

TTL = timedelta(seconds=6)
TAKER = "other-host:2"


class _TakenOverDuringTheCheck(InMemoryCrm):
    """The in-memory CRM, where the first apply's check before writing (its "reads") outlasts the lease:
    the clock jumps past the TTL there and another worker takes the account, as when the process is
    frozen at that moment (SIGSTOP, a paused VM) and resumed after the takeover."""

    def __init__(self, store: StateStore, clock: Clock, **kwargs: Any) -> None:
        super().__init__(clock=clock, **kwargs)
        self.store, self.clock = store, clock
        self.taken_over = False
        self.applies: list[int] = []

    def apply(
        self, actions: Sequence[Action], *, before_each_call: BeforeCall | None = None
    ) -> list[ActionOutcome]:
        self.applies.append(len(actions))
        return super().apply(actions, before_each_call=before_each_call)

    def _call(self, endpoint: str) -> None:
        super()._call(endpoint)
        if endpoint == "apply" and not self.taken_over:
            self.taken_over = True
            self.clock.advance(TTL + timedelta(seconds=1))
            assert self.store.acquire_lease("acme", TAKER, self.clock(), TTL)


def test_a_lease_taken_over_during_the_apply_stops_it_before_any_write_and_the_taker_writes_once(
    make_cycle, store: StateStore, clock: Clock
) -> None:
    crm = _TakenOverDuringTheCheck(
        store,
        clock,
        owners=OWNERS,
        pipelines=(PIPELINE,),
        deals=[make_deal(i, owner="o1" if i % 2 else "o2") for i in range(1, 11)],
        page_size=4,
    )
    options = CycleOptions(apply_batch_size=3, evaluate_chunk=4, lease_ttl=TTL)

    frozen = run_cycle(make_cycle(connector=crm, options=options))

    assert (frozen.status, frozen.error) == ("stopped", "lease lost")
    assert crm.applies == [3]  # the first batch's apply began, and nothing after it
    assert crm.tasks() == []  # no write reached the CRM once the lease was gone
    pending = store.pending_intents("acme")
    assert len(pending) == 3  # left for the holder's recovery
    holder = store.lease_holder("acme")
    assert holder is not None
    assert holder[0] == TAKER

    taker = run_cycle(make_cycle(connector=crm, options=options, holder=TAKER))

    assert taker.status == "ok"
    assert taker.counts["applied"] == 10
    assert store.pending_intents("acme") == []
    keys = Counter(t.task.key for t in crm.tasks())
    assert len(keys) == 10  # every deal's task
    assert set(keys.values()) == {1}  # each once
    assert {a.key for a in pending} <= set(keys)
