"""Rules that give the rep a task: agreed interval or cadence (a), next step (b), qualify (e), decision
maker (f), the signal that supersedes a follow-up (g) and the expiry of tasks nobody acted on (h).

Each rule owns at most one open auto-task per deal. A task's key names its intent (for the follow-up: the
conversation it follows and the day it aims at), so the same intent never gives a second task, and when
the intent changes the rule updates its task or closes it and creates the new one.
"""

from __future__ import annotations

from datetime import datetime

from policies.bounds import capped_interval
from policies.context import (
    AGREED,
    DECISION_MAKER,
    EXPIRY,
    NEXT_STEP,
    QUALIFICATION,
    SIGNALS,
    Context,
    day,
    fact,
)
from policies.durations import Duration, days
from policies.lifecycle import next_step_key
from policies.model import (
    AutoTask,
    Channel,
    CloseReason,
    Evidence,
    Explanation,
    Priority,
    TaskType,
    make_key,
)
from policies.policy_file import TaskText

_TASK_TYPE = {Channel.CALL: TaskType.CALL, Channel.EMAIL: TaskType.EMAIL, Channel.MEETING: TaskType.MEETING}


def expire_tasks(ctx: Context) -> None:
    """(h) Close auto-tasks still open ``task_expiry`` after they fell due: nobody is going to do them."""
    expiry = ctx.rules.task_expiry
    if expiry is None:
        ctx.verdict(EXPIRY, False, "task expiry is off")
        return
    if not ctx.open_tasks:
        ctx.verdict(EXPIRY, False, "no open task past its expiry")
        return
    # Counted from the due date, or from creation for a task created already overdue: nobody had a chance.
    expired = [t for t in ctx.open_tasks if ctx.calendar.passed(max(t.due_at, t.created_at), expiry, ctx.now)]
    for task in expired:
        explanation = Explanation(
            f"task open {expiry} past its due date with nobody acting on it",
            (Evidence("due", day(task.due_at, ctx.calendar)), Evidence("task", task.id)),
        )
        ctx.close(task, EXPIRY, CloseReason.EXPIRED, explanation)
    if expired:
        ctx.verdict(
            EXPIRY,
            True,
            f"{len(expired)} task(s) expired",
            Evidence("tasks", ", ".join(t.id for t in expired)),
        )
    else:
        ctx.verdict(EXPIRY, False, "no open task past its expiry")


def close_rule_tasks(ctx: Context, rule_id: str, reason: CloseReason, summary: str) -> int:
    tasks = ctx.open_for(rule_id)
    for task in tasks:
        ctx.close(task, rule_id, reason, Explanation(summary))
    return len(tasks)


def qualify_task(ctx: Context, gaps: list[str]) -> None:
    """(e) One 'qualify or disqualify' task per deal; the other task rules stay silent meanwhile."""
    missing = ", ".join(gaps)
    key = make_key(QUALIFICATION, ctx.deal.id)
    evidence = (fact("missing", missing),)
    if _already_asked(ctx, QUALIFICATION, key, "unqualified; the qualify task was already given", evidence):
        return
    explanation = Explanation("the deal is not qualified: qualify or disqualify it", evidence)
    text, values = ctx.policy.texts.qualify, ctx.text_values(missing=missing)
    _ask_now(ctx, QUALIFICATION, key, text, values, explanation, Priority.LOW)
    ctx.verdict(QUALIFICATION, True, "unqualified: qualify task created", *evidence)


def next_step_task(ctx: Context, gaps: list[str]) -> None:
    """(b) Ask for what, why and when; close the request once the deal has a complete next step."""
    rule = ctx.rules.next_step
    if not rule.enabled:
        ctx.verdict(NEXT_STEP, False, "disabled for this scope")
        return
    step = ctx.deal.next_step
    if not gaps:
        closed = close_rule_tasks(ctx, NEXT_STEP, CloseReason.SETTLED, "the next step is now complete")
        ctx.verdict(
            NEXT_STEP,
            closed > 0,
            f"next step complete; {closed} request(s) closed" if closed else "next step complete",
            fact("when", step.when.isoformat() if step.when else ""),
        )
        return
    missing = ", ".join(gaps)
    key = next_step_key(ctx)
    recorded = (step.what or "").strip()
    shown = f'"{recorded[:80]}"' if recorded else "(empty)"
    evidence = (fact("missing", missing), Evidence("what", shown))
    stale = [t for t in ctx.open_for(NEXT_STEP) if t.key != key] if ctx.open_tasks else []
    for task in stale:
        ctx.close(task, NEXT_STEP, CloseReason.SUPERSEDED, Explanation("the next step changed; asking again"))
    if key in ctx.keys:
        ctx.verdict(
            NEXT_STEP, bool(stale), f"incomplete ({missing}); already asked, grace {rule.grace}", *evidence
        )
        return
    explanation = Explanation(f"the next step is incomplete: {missing}", evidence)
    ctx.create(
        NEXT_STEP,
        key,
        ctx.policy.texts.next_step,
        ctx.text_values(missing=missing),
        explanation,
        ctx.due_now(),
        contact_id=_primary(ctx),
    )
    ctx.verdict(NEXT_STEP, True, f"incomplete ({missing}): next-step task created", *evidence)


def followup_task(ctx: Context) -> None:
    """(a, g) The follow-up due at the last conversation plus the agreed interval (or the stage cadence)."""
    rule = ctx.rules.agreed_interval
    if not rule.enabled:
        ctx.verdict(AGREED, False, "disabled for this scope")
        ctx.verdict(SIGNALS, False, "follow-up rule disabled for this scope")
        return
    deal, calendar = ctx.deal, ctx.calendar
    agreement = deal.agreement
    anchor_at, anchor_ref, agreed, basis, due, key = followup_target(ctx)
    channel = agreement.channel or rule.default_channel
    evidence = (
        Evidence("anchor", f"{day(anchor_at, calendar)} ({anchor_ref})"),
        Evidence("basis", basis),
        fact("due", day(due, calendar)),
        fact("channel", channel.value),
    )
    open_tasks = ctx.open_for(AGREED)
    for extra in open_tasks[1:]:  # never two open follow-ups for one deal
        ctx.close(extra, AGREED, CloseReason.SUPERSEDED, Explanation("duplicate follow-up task"))
    current = open_tasks[0] if open_tasks else None
    # An open follow-up covers this intent if it aims at the same moment or, once the intent is due,
    # if it is itself due by the next working moment: the rep already has the right task in front of them.
    already_due = due <= ctx.now
    if (
        (key is not None and key in ctx.keys)
        or (current is not None and current.due_at == due)
        or (current is not None and already_due and current.due_at <= ctx.due_now())
    ):
        ctx.verdict(AGREED, False, f"follow-up due {day(due, calendar)} already planned", *evidence)
        ctx.verdict(SIGNALS, False, "no open follow-up to supersede")
        return
    text = ctx.policy.texts.agreed_followup if agreed else ctx.policy.texts.cadence_followup
    if due > ctx.now:
        _supersede(ctx, current, due, evidence)
        ctx.verdict(AGREED, False, f"not due yet: follow-up due {day(due, calendar)}", *evidence)
        return
    ctx.verdict(SIGNALS, False, "no signal supersedes the follow-up")
    values = ctx.text_values()
    explanation = Explanation(f"follow-up due {day(due, calendar)} ({basis})", evidence)
    if current is not None:
        # The open task was set for later: bring it forward to the next working moment, not into the past.
        moved = ctx.due_now()
        ctx.move(
            current,
            AGREED,
            explanation,
            moved,
            subject=text.subject.render({**values, "due": day(moved, calendar)}),
            body=text.body.render({**values, "due": day(moved, calendar)}),
        )
        ctx.verdict(AGREED, True, f"follow-up brought forward to {day(moved, calendar)} ({basis})", *evidence)
        return
    contact = _signal_contact(ctx)
    ctx.create(
        AGREED,
        key or _followup_key(deal.id, anchor_ref, due),
        text,
        values,
        explanation,
        due,
        task_type=_TASK_TYPE[channel],
        priority=Priority.HIGH if agreed else Priority.MEDIUM,
        contact_id=contact,
    )
    ctx.verdict(AGREED, True, f"follow-up task created, due {day(due, calendar)} ({basis})", *evidence)


def followup_target(ctx: Context) -> tuple[datetime, str, bool, str, datetime, str | None]:
    """(anchor moment, anchor ref, agreed, basis, due, key) of the follow-up the deal is owed now.

    The anchor is the last conversation (or a later unanswered attempt, retried on the cadence); a
    follow-up for it that is already done chains the next one on the cadence. The key (hashed) is worked
    out only where it is compared or used: most deals have no task yet (``None`` then). Shared by the
    rule and by ``policies.wakeup`` (when the follow-up next falls due).
    """
    rule = ctx.rules.agreed_interval
    deal, facts, calendar = ctx.deal, ctx.facts, ctx.calendar
    agreement = deal.agreement
    cadence: Duration = rule.cadence_by_stage.get(deal.stage.id, rule.default_cadence)
    signal = facts.last_signal
    anchor_at, anchor_ref = (signal.occurred_at, signal.id) if signal else (deal.created_at, "created")
    agreed = bool(agreement.interval_days and agreement.interval_days > 0)
    # Bounded: connectors reject intervals past MAX_INTERVAL_DAYS; a snapshot or mirror may still hold one.
    interval = days(capped_interval(agreement.interval_days or 0)) if agreed else cadence
    basis = f"agreed interval of {interval.amount} days" if agreed else f"cadence of {cadence}"
    # A later unanswered attempt restarts the clock on the cadence: try again.
    attempt = facts.last_attempt
    if attempt is not None and attempt.occurred_at > anchor_at:
        anchor_at, anchor_ref, interval, agreed = attempt.occurred_at, attempt.id, cadence, False
        basis = f"retry on the cadence of {cadence} after the unanswered {attempt.kind} {attempt.id}"
    # A follow-up for this anchor that is already done (closed) chains the next one on the cadence.
    done = {t.key: t for t in ctx.closed_tasks if t.rule_id == AGREED} if ctx.closed_tasks else {}
    done_due = {t.due_at: t for t in done.values()} if done else {}
    due = calendar.due_after(anchor_at, interval)
    key = _followup_key(deal.id, anchor_ref, due) if done or ctx.keys else None
    for _ in range(len(done)):
        finished = done.get(key or "") or done_due.get(due)
        if finished is None:
            break
        anchor_at, anchor_ref, interval, agreed = due, f"task:{finished.key}", cadence, False
        basis = f"cadence of {cadence} after the follow-up due {day(due, calendar)}"
        due = calendar.due_after(anchor_at, interval)
        key = _followup_key(deal.id, anchor_ref, due)
    return anchor_at, anchor_ref, agreed, basis, due, key


def _followup_key(deal_id: str, anchor_ref: str, due: datetime) -> str:
    """The follow-up's intent: the conversation (or follow-up) it follows and the moment it aims at."""
    return make_key(AGREED, deal_id, anchor_ref, due.isoformat())


def _supersede(ctx: Context, current: AutoTask | None, due: datetime, evidence: tuple[Evidence, ...]) -> None:
    """(g) A newer conversation replaced the open follow-up: close it, or move it to the new due date."""
    signals = ctx.rules.signals
    if current is None:
        ctx.verdict(SIGNALS, False, "no open follow-up to supersede")
        return
    if not signals.enabled:
        ctx.verdict(SIGNALS, False, "signals rule disabled: the open follow-up stays", *evidence)
        return
    explanation = Explanation(
        f"a newer conversation moved the next follow-up to {day(due, ctx.calendar)}", evidence
    )
    if signals.on_signal == "close":
        ctx.close(current, SIGNALS, CloseReason.SUPERSEDED, explanation)
        ctx.verdict(SIGNALS, True, "open follow-up closed: superseded by a newer conversation", *evidence)
        return
    ctx.move(current, SIGNALS, explanation, due)
    ctx.verdict(SIGNALS, True, f"open follow-up moved to {day(due, ctx.calendar)}", *evidence)


def decision_maker_task(ctx: Context) -> None:
    """(f) Late-stage or large deals without a decision maker among the contacts: one task to reach one."""
    rule = ctx.rules.decision_maker
    deal = ctx.deal
    if not rule.enabled:
        ctx.verdict(DECISION_MAKER, False, "disabled for this scope")
        return
    by_stage = deal.stage.id in rule.stages
    by_amount = rule.min_amount is not None and deal.amount is not None and deal.amount >= rule.min_amount
    if not (by_stage or by_amount):
        ctx.verdict(DECISION_MAKER, False, "neither in a listed stage nor above the amount")
        return
    wanted = frozenset(rule.roles)
    found = [c.id for c in deal.contacts if c.roles & wanted]
    roles = ", ".join(rule.roles)  # StrEnum members: their values
    if found:
        closed = close_rule_tasks(ctx, DECISION_MAKER, CloseReason.SETTLED, "a decision maker is on the deal")
        ctx.verdict(
            DECISION_MAKER, closed > 0, "decision maker covered", Evidence("contacts", ", ".join(found))
        )
        return
    trigger = f"stage {deal.stage.id}" if by_stage else f"amount {deal.amount:,.0f} >= {rule.min_amount:,.0f}"
    evidence = (
        fact("trigger", trigger),
        Evidence(
            "contacts",
            ", ".join([f"{c.id} ({'/'.join(sorted(c.roles)) or 'no role'})" for c in deal.contacts]),
        ),
        fact("roles wanted", roles),
    )
    key = make_key(DECISION_MAKER, deal.id, deal.stage.id)
    if _already_asked(ctx, DECISION_MAKER, key, "no decision maker; already asked", evidence):
        return
    explanation = Explanation(f"no contact in a decision-making role ({roles})", evidence)
    text, values = ctx.policy.texts.decision_maker, ctx.text_values(roles=roles)
    _ask_now(ctx, DECISION_MAKER, key, text, values, explanation, Priority.HIGH)
    ctx.verdict(DECISION_MAKER, True, "no decision maker: task created", *evidence)


def _already_asked(ctx: Context, rule_id: str, key: str, reason: str, evidence: tuple[Evidence, ...]) -> bool:
    """A one-off request (qualify, reach the decision maker) is made once, not again while open or done."""
    if key in ctx.keys or ctx.open_for(rule_id):
        ctx.verdict(rule_id, False, reason, *evidence)
        return True
    return False


def _ask_now(
    ctx: Context,
    rule_id: str,
    key: str,
    text: TaskText,
    values: dict[str, str],
    explanation: Explanation,
    priority: Priority,
) -> None:
    """A one-off request to the owner, due at the next working moment, about the primary contact."""
    ctx.create(
        rule_id, key, text, values, explanation, ctx.due_now(), priority=priority, contact_id=_primary(ctx)
    )


def _primary(ctx: Context) -> str | None:
    contact = ctx.deal.primary_contact
    return contact.id if contact is not None else None


def _signal_contact(ctx: Context) -> str | None:
    signal = ctx.facts.last_signal
    if signal is not None and signal.contact_ids:
        ids = {c.id for c in ctx.deal.contacts}
        for contact_id in signal.contact_ids:
            if contact_id in ids:
                return contact_id
    return _primary(ctx)
