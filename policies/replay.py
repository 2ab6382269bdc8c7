"""The backtest's replay: what a policy would have done to a pipeline over a period of its history.

Pure: no I/O, no clock, nothing written anywhere. The simulated worker runs a cycle at every *tick* (every
``step`` inside the policy calendar's working hours, on its business days; ``working_ticks``). At a tick it
reconstructs the deals as they were then (``policies.history``), evaluates them with the engine, applies the
budgets across deals (``policies.planner.apply_budgets``) and applies the resulting actions to its own
simulated world with ``policies.simulate.apply_actions``:

* the reps' real activities and field changes happen as they did; the policy's own writes (stage moves,
  its state fields) hold until a rep changes the same field later (the CRM keeps the last write);
* a task the policy created stays open until it expires, is superseded or settled, or its deal closes;
* a deal the policy stopped is dead for the policy: it is never evaluated again;
* a nurtured deal waits for a signal (the engine reactivates it on a reply, a booked meeting, a call);
* the policy starts from nothing: no tasks, every deal active (crm-followup's own fields in the history,
  if it ran before, are ignored).

**Event-driven.** A deal is evaluated only at the first tick at or after something happened to it (a
recorded change, an activity becoming visible, its creation), at the first tick at or after
``policies.wakeup.next_wakeup`` (a time-based rule can fire), and after a budget held back one of its
tasks (at the next tick, or at the owner's next day once the owner's daily cap is used up). Everywhere
else evaluating it would decide nothing. ``replay(..., every_tick=True)`` evaluates every deal at every
tick instead; a Hypothesis property checks that both give the same actions.

What happens is reported to a ``ReplayObserver`` tick by tick (the backtest's metrics), so that nothing but
the simulated world and the counters is kept in memory.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from types import MappingProxyType
from typing import Protocol

from policies.calendar import BusinessCalendar
from policies.engine import evaluate, next_wakeup
from policies.history import DealTimeline, HistoryField, micros
from policies.model import (
    Action,
    ActivityKind,
    ChangeStage,
    CreateTask,
    Deal,
    DealField,
    Decision,
    DeferredAction,
    FieldValue,
    FollowupState,
    Owner,
    Pipeline,
    SetDealFields,
)
from policies.packed_tasks import Packed, pack, unpack
from policies.planner import BudgetUsage, Touches, apply_budgets, usage_from_deals
from policies.policy import Policy
from policies.simulate import apply_actions

_TOUCH_KINDS = frozenset({ActivityKind.CALL, ActivityKind.EMAIL, ActivityKind.MEETING})
_DAY = timedelta(days=1)


def working_ticks(
    calendar: BusinessCalendar, first: date, last: date, step: timedelta, until: datetime | None = None
) -> list[datetime]:
    """The simulated worker's cycles: every ``step`` from the opening of each business day in
    ``[first, last]`` to its close (inclusive), in UTC; none after ``until``."""
    if step <= timedelta(0):
        raise ValueError("the step between cycles must be positive")
    ticks: list[datetime] = []
    day = first
    while day <= last:
        if calendar.is_business_day(day):
            moment = datetime.combine(day, calendar.start, calendar.tz)
            close = datetime.combine(day, calendar.end, calendar.tz)
            while moment <= close:
                at = moment.astimezone(UTC)
                if until is not None and at > until:
                    return ticks
                ticks.append(at)
                moment = (moment.astimezone(UTC) + step).astimezone(calendar.tz)
        day += _DAY
    return ticks


@dataclass(frozen=True, slots=True)
class Evaluated:
    """One deal at one tick, and what the policy did to it (after budgets). ``deal`` is the deal as the
    policy saw it, by its id, name, owner, amount and stage: without its activities, contacts, tasks and
    extra fields (a tick's evaluated deals are reported together; most of the pipeline at the first)."""

    deal: Deal
    actions: tuple[Action, ...]


class ReplayObserver(Protocol):
    def tick(
        self, moment: datetime, evaluated: Sequence[Evaluated], deferred: Sequence[DeferredAction]
    ) -> None:
        """Called once per tick at which at least one deal was evaluated; ``evaluated`` holds only the
        deals that had actions applied."""
        ...


@dataclass(slots=True)
class _Sim:
    """The policy's simulated world for one deal."""

    overlay: dict[str, tuple[datetime, FieldValue]] = field(default_factory=dict)
    tasks: Packed = ()  # every task the policy created on the deal, closed ones too (``packed_tasks``)


Settle = Callable[[int, Deal, bool], None]  # deal index, the deal after the cycle, held back by a budget


class _Usage:
    """``BudgetUsage`` over the whole simulated world: tasks the policy created (by owner and local day)
    and the reps' real outbound touches (by contact), counted as the planner counts them over all deals."""

    def __init__(
        self, policy: Policy, owners: Mapping[str, Owner], timelines: Sequence[DealTimeline]
    ) -> None:
        self._policy = policy
        self._owners = owners
        self._created: dict[str, Counter[date]] = defaultdict(Counter)
        self._unowned: list[tuple[DealTimeline, datetime]] = []  # tasks created without an owner
        # contact -> the deals whose activities touch it (read when a touch task for it is planned: rare)
        deals_of: dict[str, list[DealTimeline]] = defaultdict(list)
        for timeline in timelines:
            for contact_id in timeline.contacts_touched():
                deals_of[contact_id].append(timeline)
        self._deals_of = dict(deals_of)
        self.now: datetime | None = None  # the tick being planned: what is visible then

    def tasks_created(self, owner_id: str, day: date) -> int:
        count = self._created[owner_id][day]
        if self._unowned:
            # A task created without an owner counts for whoever owns its deal now (as the planner counts).
            calendar = self._policy.calendar_for(self._owners.get(owner_id))
            now = self.now
            for timeline, created in self._unowned:
                if now is None or calendar.local_date(created) != day:
                    continue
                recorded, owner = timeline.value(HistoryField.OWNER, now)
                current = owner if recorded else timeline.deal.owner_id
                count += (str(current) if current else "") == owner_id
        return count

    @property
    def has_unowned(self) -> bool:
        """Tasks created without an owner count for their deal's owner of the moment: a day's count can
        then go down when such a deal gets an owner."""
        return bool(self._unowned)

    def record(self, owner_id: str | None, timeline: DealTimeline, moment: datetime) -> None:
        if not owner_id:
            self._unowned.append((timeline, moment))
            return
        calendar = self._policy.calendar_for(self._owners.get(owner_id))
        self._created[owner_id][calendar.local_date(moment)] += 1

    def touches(self, contact_ids: Iterable[str], start: datetime, end: datetime) -> Touches:
        now = self.now or end
        out: Touches = {}
        for contact_id in contact_ids:
            seen: dict[str, datetime] = {}
            for timeline in self._deals_of.get(contact_id, ()):
                if timeline.deal.created_at <= now:
                    seen.update(timeline.outbound_touches(contact_id, start, end, now))
            out[contact_id] = sorted(seen.values())
        return out


class _World:
    """The simulated world: every deal's timeline and the policy's own state of it."""

    def __init__(
        self,
        policy: Policy,
        timelines: Sequence[DealTimeline],
        owners: Mapping[str, Owner],
        pipelines: Iterable[Pipeline],
    ) -> None:
        self.policy = policy
        self.timelines = timelines
        self.owners = owners
        self.pipelines = {p.id: p for p in pipelines}
        self.sims: dict[int, _Sim] = {}  # only deals the policy has acted on
        self.dead: set[int] = set()
        self.usage = _Usage(policy, owners, timelines)

    def deal_at(self, index: int, moment: datetime) -> Deal:
        sim = self.sims.get(index)
        line = self.timelines[index]
        if sim is None:  # the policy has not acted on this deal yet
            return line.as_of(moment, auto_tasks=(), own_fields=False)
        return line.as_of(moment, overlay=sim.overlay, auto_tasks=unpack(sim.tasks), own_fields=False)

    def owner(self, deal: Deal) -> Owner | None:
        return self.owners.get(deal.owner_id or "")

    def cycle(
        self,
        moment: datetime,
        indexes: Sequence[int],
        observer: ReplayObserver,
        settle: Settle,
        usage: BudgetUsage | None = None,
    ) -> None:
        """One worker cycle over the deals at ``indexes``: evaluate, budget, apply. Hands ``settle``, per
        deal index, the deal after its actions and whether a budget held one of its tasks back.

        A deal the engine decides nothing for is settled at once and let go; the deals with actions wait
        for the budgets (which look at those alone) as their amount, stage and id only, and are rebuilt to
        apply them: a cycle over most of the pipeline (the first one) never holds all its deals at once."""
        policy = self.policy
        deals: list[Deal] = []
        decisions: list[Decision] = []
        at: dict[str, int] = {}
        evaluated_any = False
        for index in indexes:
            deal = self.deal_at(index, moment)
            if deal.stage.is_closed and not any(t.is_open for t in deal.auto_tasks):
                settle(index, deal, False)  # a closed deal with nothing open: the engine decides nothing
                continue
            evaluated_any = True
            decision = evaluate(policy, deal, moment, self.owner(deal))
            if not decision.actions:
                settle(index, deal, False)  # no action: nothing for a budget to hold back
                continue
            deals.append(_ranked(deal))  # the budgets rank by amount and stage: the rest can go for now
            decisions.append(decision)
            at[deal.id] = index
        if not evaluated_any:
            return
        self.usage.now = moment
        plan = apply_budgets(policy, decisions, deals, moment, self.owners, usage or self.usage)
        by_deal: dict[str, list[Action]] = defaultdict(list)
        for action in plan.actions:
            by_deal[action.deal_id].append(action)
        held = {d.action.deal_id for d in plan.deferred}
        evaluated: list[Evaluated] = []
        waiting: list[tuple[int, Deal]] = []  # held back by a budget: settled once all tasks are counted
        for ranked in deals:
            index = at[ranked.id]
            actions = by_deal.get(ranked.id)
            deal = self.deal_at(index, moment)  # the deal evaluated, rebuilt (pure: an equal deal)
            if actions:
                after = apply_actions(deal, actions, moment, pipelines=self.pipelines)
                self._remember(index, deal, after, actions, moment)
                evaluated.append(Evaluated(ranked, tuple(actions)))
                deal = after
            if ranked.id in held:
                waiting.append((index, deal))
            else:
                settle(index, deal, False)
        observer.tick(moment, evaluated, plan.deferred)
        for index, deal in waiting:
            settle(index, deal, True)

    def _remember(self, index: int, deal: Deal, after: Deal, actions: list[Action], moment: datetime) -> None:
        sim = self.sims.setdefault(index, _Sim())
        if after.auto_tasks is not deal.auto_tasks:
            sim.tasks = pack(after.auto_tasks)
        overlay = sim.overlay
        for action in actions:
            if isinstance(action, SetDealFields):
                for name, value in action.fields.items():
                    overlay[str(name)] = (moment, value)
            elif isinstance(action, ChangeStage):
                overlay["pipeline"] = (moment, action.pipeline_id)
                overlay["stage"] = (moment, action.stage_id)
                if action.close_reason is not None:
                    overlay[DealField.CLOSE_REASON.value] = (moment, action.close_reason)
            elif isinstance(action, CreateTask):
                self.usage.record(action.owner_id, self.timelines[index], moment)
        if after.followup_state is FollowupState.STOPPED:
            self.dead.add(index)

    def forget(self, index: int) -> None:
        """Let go of a stopped deal's simulated state: the event-driven replay never looks at it again."""
        self.sims.pop(index, None)


_NO_FIELDS: Mapping[str, FieldValue] = MappingProxyType({})


def _ranked(deal: Deal) -> Deal:
    """What the budgets look at of a deal (``planner``: its id, amount and stage), without the rest."""
    return replace(deal, contacts=(), activities=(), auto_tasks=(), rep_tasks=(), fields=_NO_FIELDS)


def _ignore(index: int, deal: Deal, held: bool) -> None:
    """``_replay_every_tick`` evaluates every deal at every tick: nothing to schedule."""


def _first_tick(ticks: Sequence[datetime], moment: datetime, after: int) -> int:
    """The index of the first tick at or after ``moment`` and after tick ``after``."""
    return max(after + 1, bisect_left(ticks, moment))


def replay(
    policy: Policy,
    timelines: Sequence[DealTimeline],
    owners: Mapping[str, Owner],
    pipelines: Iterable[Pipeline],
    ticks: Sequence[datetime],
    observer: ReplayObserver,
    *,
    every_tick: bool = False,
) -> None:
    """The event-driven replay (see the module docstring). With ``every_tick`` the reference replay
    instead: every existing deal the policy has not stopped, at every tick, with the budgets counting
    from all existing deals as ``planner.plan`` does. Slow; for tests."""
    if not ticks:
        return
    world = _World(policy, timelines, owners, pipelines)
    if every_tick:
        _replay_every_tick(world, ticks, observer)
    else:
        _replay_by_events(world, ticks, observer)


def _replay_by_events(world: _World, ticks: Sequence[datetime], observer: ReplayObserver) -> None:
    policy, timelines, owners = world.policy, world.timelines, world.owners
    last = len(ticks) - 1
    buckets: dict[int, list[int]] = defaultdict(list)
    scheduled = [last + 1] * len(timelines)  # the tick each deal is next evaluated at (last + 1: never)
    events = [t.event_us for t in timelines]
    tick_us = [micros(t) for t in ticks]

    def next_event(index: int, tick: int) -> int:
        """The tick of the deal's first event after tick ``tick`` (its first tick at or after it)."""
        times = events[index]
        position = bisect_right(times, tick_us[tick])
        return bisect_left(tick_us, times[position]) if position < len(times) else last + 1

    def schedule(index: int, tick: int) -> None:
        if tick <= last and tick < scheduled[index]:
            scheduled[index] = tick
            buckets[tick].append(index)

    for index, timeline in enumerate(timelines):
        schedule(index, bisect_left(ticks, timeline.deal.created_at))
    cap = policy.budgets.max_new_tasks_per_owner_per_day

    def settle(tick: int, moment: datetime, index: int, deal: Deal, held: bool) -> None:
        """When the deal is evaluated next, after tick ``tick`` left it as ``deal``."""
        if index in world.dead:
            world.forget(index)
            return
        owner = world.owner(deal)
        schedule(index, next_event(index, tick))
        wake = next_wakeup(policy, deal, moment, owner)
        if wake is not None:
            schedule(index, _first_tick(ticks, wake, tick))
        if held:
            key = deal.owner_id or ""
            calendar = policy.calendar_for(owners.get(key))
            today = calendar.local_date(moment)
            full = world.usage.tasks_created(key, today) >= cap
            if full and not world.usage.has_unowned:  # the owner's day is full: tomorrow
                tomorrow = datetime.combine(today + _DAY, time(0), calendar.tz)
                schedule(index, _first_tick(ticks, tomorrow, tick))
            else:  # a contact's weekly limit, or unowned tasks that may move to another owner
                schedule(index, tick + 1)

    for tick, moment in enumerate(ticks):
        due = sorted({i for i in buckets.pop(tick, ()) if scheduled[i] == tick})
        if not due:
            continue
        for index in due:
            scheduled[index] = last + 1
        world.cycle(moment, [i for i in due if i not in world.dead], observer, partial(settle, tick, moment))


def _replay_every_tick(world: _World, ticks: Sequence[datetime], observer: ReplayObserver) -> None:
    timelines = world.timelines
    for moment in ticks:
        existing = [i for i, t in enumerate(timelines) if t.deal.created_at <= moment]
        live = [i for i in existing if i not in world.dead]
        everyone = [world.deal_at(i, moment) for i in existing]
        usage = usage_from_deals(world.policy, everyone, world.owners)
        world.cycle(moment, live, observer, _ignore, usage)
