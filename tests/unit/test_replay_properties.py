"""The event-driven replay decides exactly what evaluating every deal at every cycle decides.

``policies.replay.replay`` evaluates a deal only when something happened to it, when
``policies.wakeup.next_wakeup`` says a time-based rule can fire, or after a budget held one of its tasks
back; ``replay(..., every_tick=True)`` evaluates every deal at every cycle and counts the budgets as
``planner.plan`` does. Over random small pipelines with random histories, both must apply the same
actions at the same moments and hold back the same tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.engine import evaluate, next_wakeup
from policies.history import timelines
from policies.model import Deal, DeferredAction, Owner, action_kind
from policies.policy import Policy
from policies.replay import Evaluated, replay, working_ticks
from policies.simulate import apply_actions
from tests.unit.history_strategies import (
    FIRST_DAY,
    LAST_DAY,
    OWNERS,
    PIPELINES,
    POLICIES,
    World,
    policy_names,
    steps,
    worlds,
)
from tests.unit.strategies import deals, nows, owners, policies

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Log:
    def __init__(self) -> None:
        self.actions: list[tuple[datetime, str, str, str]] = []
        self.deferred: set[str] = set()

    def tick(
        self, moment: datetime, evaluated: Sequence[Evaluated], deferred: Sequence[DeferredAction]
    ) -> None:
        for item in evaluated:
            self.actions.extend((moment, item.deal.id, action_kind(a), a.key) for a in item.actions)
        self.deferred.update(d.action.key for d in deferred)


def _run(policy: Policy, world: World, step: timedelta, *, every_tick: bool) -> Log:
    found, _ = timelines(world.deals, PIPELINES, world.history)
    ticks = working_ticks(policy.calendar_for(None), FIRST_DAY, LAST_DAY, step)
    log = Log()
    replay(policy, found, OWNERS, PIPELINES, ticks, log, every_tick=every_tick)
    return log


@PROPERTY
@given(policy_names, worlds(), steps)
def test_event_driven_replay_equals_evaluating_every_deal_at_every_cycle(
    name: str, world: World, step: timedelta
) -> None:
    """Same actions, at the same cycles, in the same order; the same tasks held back by budgets."""
    policy = POLICIES[name]
    fast = _run(policy, world, step, every_tick=False)
    slow = _run(policy, world, step, every_tick=True)
    assert fast.actions == slow.actions
    assert fast.deferred == slow.deferred


@PROPERTY
@given(policies, deals(), nows, owners, st.integers(1, 24 * 60 * 40))
def test_nothing_happens_to_a_settled_deal_before_its_next_wakeup(
    policy: Policy, deal: Deal, now: datetime, owner: Owner | None, minutes: int
) -> None:
    """After its actions are applied, a deal evaluated at any later moment before ``next_wakeup`` decides
    nothing: the wake-up is never too late."""
    settled = apply_actions(deal, evaluate(policy, deal, now, owner).actions, now)
    wake = next_wakeup(policy, settled, now, owner)
    later = now + timedelta(minutes=minutes)
    if wake is not None:
        assert wake > now
        if later >= wake:
            later = now + (wake - now) / 2
    assert evaluate(policy, settled, later, owner).actions == ()
