"""``evaluate(policy, deal, now, owner)``: what should happen to one deal now, and why.

Pure and deterministic: no I/O, no clock (``now`` is an argument), no logging. The result holds the
actions and a verdict for every rule, fired or not, with its reason and evidence (``followup explain``).

The deal's lifecycle is a small state machine on ``followup_state`` (crm-followup's own field):

    state      what the engine does
    -------    ------------------------------------------------------------------------------------
    (closed)   the CRM stage is closed: only close crm-followup's own open tasks
    stopped    nothing, unless a person reopened the deal (stage changed since) -> active again
    nurture    nothing, unless a contact sent a signal -> reactivate, then evaluate as active
    active     stop/nurture checks first (they end follow-up); else the task rules

When a step changes the state (reactivation, reopening), the engine applies its own actions to the deal
with ``policies.simulate.apply_actions`` and evaluates the result as active, so that evaluating again
after the actions are applied adds nothing.

``next_wakeup(policy, deal, now, owner)`` (from ``policies.wakeup``) says when a time-based rule can next
act on a deal nothing happens to; the backtest evaluates deals only then and when something happened.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from operator import itemgetter

from policies.combine import fold
from policies.context import (
    AGREED,
    DECISION_MAKER,
    NEXT_STEP,
    NURTURE,
    QUALIFICATION,
    RULE_IDS,
    STOP,
    Context,
    day,
    fact,
    state_fields,
)
from policies.facts import NO_FACTS, TOUCH, gather_facts, signal_kind
from policies.lifecycle import decide_end, next_step_gaps, qualification_gaps
from policies.model import (
    Action,
    Activity,
    CloseReason,
    CloseTask,
    CreateTask,
    Deal,
    DealField,
    Decision,
    Evidence,
    Explanation,
    FollowupState,
    Owner,
    Priority,
    ReactivateFromNurture,
    Readiness,
    TaskType,
    UpdateTask,
    make_key,
)
from policies.policy import Policy
from policies.simulate import apply_actions, task_id_for
from policies.task_rules import (
    close_rule_tasks,
    decision_maker_task,
    expire_tasks,
    followup_task,
    next_step_task,
    qualify_task,
)
from policies.wakeup import next_wakeup as next_wakeup  # re-exported: part of the engine's interface

_in_rule_order = itemgetter(*RULE_IDS)  # verdicts dict -> tuple in the documented rule order
_SIGNAL_TASK = {"reply": TaskType.EMAIL, "inbound_call": TaskType.CALL, "connected_call": TaskType.CALL}
_DEAL_CLOSED = Explanation("the deal is closed")  # immutable: one shared instance


def evaluate(policy: Policy, deal: Deal, now: datetime, owner: Owner | None = None) -> Decision:
    """Decide one deal's actions at ``now``; ``owner`` supplies time zone, working hours and team."""
    # A closed deal's history is not read.
    ctx = Context.of(policy, deal, now, owner, NO_FACTS if deal.stage.is_closed else gather_facts(deal))
    if deal.stage.is_closed:
        _closed(ctx)
        return _decision(ctx)
    return _BY_STATE[deal.followup_state](ctx)


def _decision(ctx: Context) -> Decision:
    return Decision(ctx.deal.id, tuple(fold(ctx)), _in_rule_order(ctx.verdicts))


def _active_decision(ctx: Context) -> Decision:
    _active(ctx)
    return _decision(ctx)


def _closed(ctx: Context) -> None:
    closed = ctx.close_all(STOP, CloseReason.DEAL_STOPPED, _DEAL_CLOSED)
    outcome = "won" if ctx.deal.stage.is_won else "lost"
    ctx.verdict(STOP, closed > 0, f"deal closed ({outcome}); {closed} open task(s) closed")
    ctx.skip_remaining(f"deal closed ({outcome})")


def _active(ctx: Context) -> None:
    qual_gaps = qualification_gaps(ctx)
    if decide_end(ctx, qual_gaps):
        ctx.skip_remaining("follow-up ended for this deal")
        return
    ctx.verdict(STOP, False, "no stop criterion met", fact("unanswered touches", str(ctx.facts.unanswered)))
    if NURTURE not in ctx.verdicts:
        ctx.verdict(NURTURE, False, _nurture_reason(ctx, qual_gaps))
    expire_tasks(ctx)
    if qual_gaps:
        for rule_id in (AGREED, NEXT_STEP, DECISION_MAKER):
            close_rule_tasks(ctx, rule_id, CloseReason.SUPERSEDED, "the deal is not qualified")
        qualify_task(ctx, qual_gaps)
        ctx.skip_remaining("gated: the deal is not qualified yet")
        return
    step_gaps = next_step_gaps(ctx) if ctx.rules.next_step.enabled else []
    closed = close_rule_tasks(ctx, QUALIFICATION, CloseReason.SETTLED, "the deal is now qualified")
    ctx.verdict(
        QUALIFICATION, closed > 0, "qualified" + (f"; {closed} qualify task(s) closed" if closed else "")
    )
    next_step_task(ctx, step_gaps)
    followup_task(ctx)
    decision_maker_task(ctx)


def _nurture_reason(ctx: Context, qual_gaps: list[str]) -> str:
    rules = ctx.rules.nurture
    if not rules.enabled:
        return "nurture disabled for this scope"
    if qual_gaps:
        return "not qualified: nurture is for qualified deals"
    if ctx.deal.readiness is Readiness.NOT_NOW and not rules.on_not_now:
        return "readiness not_now, but nurture.on_not_now is off"
    return f"readiness {ctx.deal.readiness}: no reason to nurture"  # a StrEnum formats as its value


def _first_signal_after(ctx: Context, since: datetime) -> Activity | None:
    wanted = frozenset(ctx.rules.nurture.reactivate_on)
    contact_ids = {c.id for c in ctx.deal.contacts}
    for activity in ctx.deal.activities:
        if activity.occurred_at <= since or activity.occurred_at > ctx.now:
            continue
        if TOUCH[activity.kind, activity.direction, activity.outcome] != "signal":
            continue
        if signal_kind(activity) not in wanted:
            continue
        if activity.contact_ids and not contact_ids.intersection(activity.contact_ids):
            continue
        return activity
    return None


def _nurtured(ctx: Context) -> Decision:
    deal = ctx.deal
    since = deal.followup_state_since or deal.created_at
    signal = _first_signal_after(ctx, since) if ctx.rules.nurture.enabled else None
    if signal is None:
        closed = ctx.close_all(NURTURE, CloseReason.DEAL_STOPPED, Explanation("the deal is in nurture"))
        ctx.verdict(
            NURTURE,
            closed > 0,
            f"in nurture since {day(since, ctx.calendar)}; no inbound signal since",
            Evidence("nurture since", day(since, ctx.calendar)),
        )
        ctx.skip_remaining("the deal is in nurture")
        return _decision(ctx)
    _reactivate(ctx, signal)
    first = fold(ctx)
    verdict = ctx.verdicts[NURTURE]
    again = evaluate(ctx.policy, apply_actions(deal, first, ctx.now), ctx.now, ctx.owner)
    verdicts = tuple(verdict if v.rule_id == NURTURE else v for v in again.verdicts)
    return Decision(deal.id, _merge_passes(first, again.actions), verdicts)


def _reactivate(ctx: Context, signal: Activity) -> None:
    deal, rules = ctx.deal, ctx.rules
    kind = signal_kind(signal)
    evidence = (
        Evidence("signal", f"{kind} on {day(signal.occurred_at, ctx.calendar)} ({signal.id})"),
        Evidence("nurture since", day(deal.followup_state_since or deal.created_at, ctx.calendar)),
    )
    explanation = Explanation(f"a nurtured contact sent a signal ({kind})", evidence)
    # Tasks left open while in nurture are stale; the reactivation task replaces them (one per rule).
    ctx.close_all(NURTURE, CloseReason.SUPERSEDED, explanation)
    contacts = tuple(c.id for c in deal.contacts)
    if rules.nurture.list is not None and contacts:
        ctx.actions.append(
            ReactivateFromNurture(
                key=make_key(NURTURE, deal.id, "reactivate", signal.id),
                deal_id=deal.id,
                rule_id=NURTURE,
                explanation=explanation,
                contact_ids=contacts,
                nurture=rules.nurture.list,
            )
        )
    moves = ctx.policy.stages.get(deal.pipeline_id)
    if rules.nurture.move_stage_back and moves is not None and moves.reactivate:
        back = make_key(NURTURE, deal.id, "stage-back", signal.id)
        ctx.change_stage(NURTURE, back, explanation, moves.reactivate)
    ctx.set_fields(
        NURTURE,
        make_key(NURTURE, deal.id, "active", signal.id),
        explanation,
        {
            **state_fields(FollowupState.ACTIVE, signal.occurred_at, f"Reactivated: {kind}"),
            DealField.READINESS: Readiness.UNKNOWN.value,
        },
    )
    ctx.create(
        NURTURE,
        make_key(NURTURE, deal.id, "task", signal.id),
        ctx.policy.texts.reactivate,
        ctx.text_values(signal=f"{kind} on {day(signal.occurred_at, ctx.calendar)}"),
        explanation,
        ctx.due_now(),
        task_type=_SIGNAL_TASK.get(kind, TaskType.TODO),
        priority=Priority.HIGH,
        contact_id=signal.contact_ids[0] if signal.contact_ids else None,
    )
    ctx.verdict(NURTURE, True, f"reactivated from nurture by a {kind}", *evidence)


def _stopped(ctx: Context) -> Decision:
    deal = ctx.deal
    since = deal.followup_state_since
    entered = deal.stage_entered_at
    if since is not None and entered is not None and entered > since:
        explanation = Explanation(
            "a person reopened the deal after crm-followup stopped it",
            (
                Evidence("stopped", day(since, ctx.calendar)),
                Evidence("stage entered", day(entered, ctx.calendar)),
            ),
        )
        ctx.set_fields(
            STOP,
            make_key(STOP, deal.id, "reopened", entered.isoformat()),
            explanation,
            state_fields(FollowupState.ACTIVE, entered, "Reopened"),
        )
        first = list(ctx.actions)  # no task actions here: nothing to combine
        again = evaluate(ctx.policy, apply_actions(deal, first, ctx.now), ctx.now, ctx.owner)
        return Decision(deal.id, _merge_passes(first, again.actions), again.verdicts)
    closed = ctx.close_all(STOP, CloseReason.DEAL_STOPPED, Explanation("follow-up was stopped for this deal"))
    ctx.verdict(STOP, closed > 0, f"stopped since {day(since, ctx.calendar) if since else 'unknown'}")
    ctx.skip_remaining("follow-up was stopped for this deal")
    return _decision(ctx)


def _merge_passes(first: list[Action], second: tuple[Action, ...]) -> tuple[Action, ...]:
    """The actions of a state change and of the evaluation after it, as one consistent list.

    The second pass saw the first pass's tasks as if created (with simulated ids). A task it closes or
    moves again must not reach the CRM twice: a created-then-closed task is dropped altogether, and a
    created-then-moved one (or one that got more items, ``tasks.combine``) is created with the new values.
    """
    simulated = {task_id_for(a.key): a for a in first if isinstance(a, CreateTask)}
    if not simulated:
        return (*first, *second)
    dropped: set[str] = set()
    changed: dict[str, CreateTask] = {}
    kept: list[Action] = []
    for action in second:
        if isinstance(action, CloseTask) and action.task_id in simulated:
            dropped.add(action.task_id)
        elif isinstance(action, UpdateTask) and action.task_id in simulated:
            base = changed.get(action.task_id, simulated[action.task_id])
            changed[action.task_id] = replace(
                base,
                rule_id=action.rule_id if action.items else base.rule_id,
                due_at=action.due_at or base.due_at,
                subject=action.subject or base.subject,
                body=action.body or base.body,
                priority=action.priority or base.priority,
                task_type=action.task_type or base.task_type,
                items=action.items or base.items,
                explanation=action.explanation if action.items else base.explanation,
            )
        else:
            kept.append(action)
    merged: list[Action] = []
    for action in first:
        if isinstance(action, CreateTask):
            task_id = task_id_for(action.key)
            if task_id in dropped:
                continue
            action = changed.get(task_id, action)
        merged.append(action)
    return (*merged, *kept)


# The lifecycle as a table (see the module docstring): crm-followup's state -> how to decide.
_BY_STATE: dict[FollowupState, Callable[[Context], Decision]] = {
    FollowupState.ACTIVE: _active_decision,
    FollowupState.NURTURE: _nurtured,
    FollowupState.STOPPED: _stopped,
}
