"""Rules that end active follow-up: stop (c), nurture (d), the qualification deadline (e) and the
next-step escalation (b).

An outcome here replaces every task rule for the deal: a stopped deal moves to the lost stage with its
reason and its open auto-tasks close; a nurtured deal's contacts join the nurture list and the rep gets no
more follow-up tasks. crm-followup writes its own state (``followup_state``, ``_since``, ``_reason``) so
that the next evaluation, in this process or another, sees what was decided. Time-based criteria count
from the later of their own reference and the moment the deal last became active, so a reactivated deal
gets a fresh start.
"""

from __future__ import annotations

from datetime import datetime

from policies.context import NEXT_STEP, NURTURE, QUALIFICATION, STOP, Context, day, fact, state_fields
from policies.model import (
    CloseReason,
    DealField,
    EnrolInNurture,
    Evidence,
    Explanation,
    FollowupState,
    make_key,
)
from policies.policy_file import RuleSet
from policies.rep_tasks import close_rep_followups


def can_nurture(rules: RuleSet) -> bool:
    return rules.nurture.enabled and rules.nurture.list is not None


def _floor(ctx: Context, moment: datetime) -> datetime:
    since = ctx.deal.followup_state_since
    return since if since is not None and since > moment else moment


def episode(ctx: Context) -> str:
    """What distinguishes this stretch of the deal's life in keys: when it last changed state or stage."""
    deal = ctx.deal
    marker = deal.followup_state_since or deal.stage_entered_at or deal.created_at
    return marker.isoformat()


# -- qualification -------------------------------------------------------------------------------


def qualification_gaps(ctx: Context) -> list[str]:
    """What keeps the deal from counting as qualified (empty: qualified, or the rule is off)."""
    rule = ctx.rules.qualification
    if not rule.enabled:
        return []
    deal = ctx.deal
    gaps = []
    for name in rule.required_fields:
        value = deal.qualification_score if name == DealField.QUALIFICATION_SCORE else deal.fields.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            gaps.append(name)
    if rule.min_score is not None:
        score = deal.qualification_score
        if score is None:
            gaps.append("score")
        elif score < rule.min_score:
            gaps.append(f"score {score:g} < {rule.min_score:g}")
    return gaps


# -- next step -----------------------------------------------------------------------------------


def next_step_gaps(ctx: Context) -> list[str]:
    """What the deal's next step lacks (empty: complete); worked out once per evaluation."""
    if ctx.step_gaps is None:
        ctx.step_gaps = _next_step_gaps(ctx)
    return ctx.step_gaps


def _next_step_gaps(ctx: Context) -> list[str]:
    rule = ctx.rules.next_step
    step = ctx.deal.next_step
    gaps = []
    if ctx.compiled.vagueness.is_vague(step.what):
        gaps.append("what" if not (step.what or "").strip() else "what is vague")
    if rule.require_why and not (step.why or "").strip():
        gaps.append("why")
    if step.when is None:
        gaps.append("when")
    elif step.when < ctx.today:
        gaps.append(f"when {step.when.isoformat()} has passed")
    return gaps


def next_step_key(ctx: Context) -> str:
    """One intent per missing next step: a new conversation or a new (past) date is a new request."""
    if ctx.step_key is None:
        step = ctx.deal.next_step
        signal = ctx.facts.last_signal
        ctx.step_key = make_key(
            NEXT_STEP,
            ctx.deal.id,
            step.when.isoformat() if step.when else "none",
            signal.id if signal else "none",
        )
    return ctx.step_key


def next_step_overdue(ctx: Context) -> datetime | None:
    """When the grace period of the request for the next step ran out, if it has; ``None`` otherwise."""
    if not ctx.tasks:
        return None  # never asked (and no key to work out)
    rule = ctx.rules.next_step
    key = next_step_key(ctx)
    asked = [t.created_at for t in ctx.tasks if t.key == key]  # a combined task's item: when it was added
    if not asked:
        return None
    deadline = ctx.calendar.shift(min(asked), rule.grace)
    return deadline if deadline <= ctx.now else None


# -- stop ----------------------------------------------------------------------------------------


def stop_criterion(ctx: Context) -> tuple[str, Explanation] | None:
    """The first stop criterion the deal meets, with its evidence; ``None`` if it is alive."""
    rule = ctx.rules.stop
    if not rule.enabled:
        return None
    deal, facts, calendar, now = ctx.deal, ctx.facts, ctx.calendar, ctx.now
    last_inbound = facts.last_signal_at
    max_touches = rule.max_unanswered_touches
    if max_touches is not None and facts.unanswered >= max_touches:
        return rule.reasons.unanswered_touches, Explanation(
            f"{facts.unanswered} outbound touches without an answer (limit {max_touches})",
            (
                fact("unanswered touches", str(facts.unanswered)),
                fact("last inbound", day(last_inbound, calendar) if last_inbound else "never"),
                Evidence("activities", ", ".join(facts.unanswered_ids)),
            ),
        )
    max_silence = rule.max_since_inbound
    if max_silence is not None:
        reference = _floor(ctx, last_inbound or deal.created_at)
        if calendar.passed(reference, max_silence, now):
            return rule.reasons.no_inbound, Explanation(
                f"no answer from the customer since {day(reference, calendar)} (limit {max_silence})",
                (fact("last inbound", day(last_inbound, calendar) if last_inbound else "never"),),
            )
    max_in_stage = rule.max_in_stage
    if max_in_stage is not None:
        reference = _floor(ctx, deal.stage_entered_at or deal.created_at)
        if calendar.passed(reference, max_in_stage, now):
            return rule.reasons.stage_age, Explanation(
                f"in stage {deal.stage.label or deal.stage.id} since {day(reference, calendar)} "
                f"(limit {max_in_stage})",
                (fact("stage entered", day(reference, calendar)),),
            )
    overdue = rule.close_date_overdue
    if overdue is not None and deal.close_date is not None:
        since = deal.followup_state_since
        reference_day = deal.close_date
        if since is not None and calendar.local_date(since) > reference_day:
            reference_day = calendar.local_date(since)
        if calendar.passed(calendar.opening(reference_day), overdue, now):
            close_date = deal.close_date.isoformat()
            return rule.reasons.close_date_passed, Explanation(
                f"close date {close_date} passed more than {overdue} ago", (fact("close date", close_date),)
            )
    return None


def enter_stop(ctx: Context, rule_id: str, reason: str, explanation: Explanation) -> None:
    """Close the deal as lost with ``reason`` and close its open auto-tasks."""
    deal = ctx.deal
    closed = ctx.close_all(rule_id, CloseReason.DEAL_STOPPED, explanation)
    moves = ctx.policy.stages.get(deal.pipeline_id)
    lost = moves.lost if moves is not None else None
    marker = episode(ctx)
    if lost is not None:
        ctx.change_stage(rule_id, make_key(rule_id, deal.id, "lost", lost, marker), explanation, lost, reason)
        where = f"moved to {lost}"
    else:
        where = f"no lost stage configured for pipeline {deal.pipeline_id}: stage unchanged"
    ctx.set_fields(
        rule_id,
        make_key(rule_id, deal.id, "state", FollowupState.STOPPED, marker),
        explanation,
        state_fields(FollowupState.STOPPED, ctx.now, reason),
    )
    ctx.verdict(
        rule_id,
        True,
        f"stop: {explanation.summary}; {where}; {closed} open task(s) closed",
        *explanation.evidence,
        fact("reason", reason),
    )


def enter_nurture(ctx: Context, rule_id: str, reason: str, explanation: Explanation) -> None:
    """Enrol the deal's contacts in nurture, record the state, close its open auto-tasks (and, with
    ``nurture.close_rep_tasks``, the owner's own open follow-up tasks: ``policies.rep_tasks``)."""
    deal = ctx.deal
    nurture = ctx.rules.nurture
    nurture_list = nurture.list
    assert nurture_list is not None
    closed = ctx.close_all(rule_id, CloseReason.DEAL_STOPPED, explanation)
    closed_rep = close_rep_followups(ctx, rule_id, explanation)
    marker = episode(ctx)
    contacts = tuple([c.id for c in deal.contacts])
    if contacts:
        ctx.actions.append(
            EnrolInNurture(
                key=make_key(NURTURE, deal.id, "enrol", marker),
                deal_id=deal.id,
                rule_id=rule_id,
                explanation=explanation,
                contact_ids=contacts,
                nurture=nurture_list,
            )
        )
    moves = ctx.policy.stages.get(deal.pipeline_id)
    stage = moves.nurture if moves is not None and nurture.move_stage else None
    if stage and stage != deal.stage.id:
        ctx.change_stage(rule_id, make_key(NURTURE, deal.id, "stage", stage, marker), explanation, stage)
    ctx.set_fields(
        rule_id,
        make_key(NURTURE, deal.id, "state", FollowupState.NURTURE, marker),
        explanation,
        state_fields(FollowupState.NURTURE, ctx.now, reason),
    )
    summary = (
        f"nurture: {explanation.summary}; {len(contacts)} contact(s) to {nurture_list!r}; "
        f"{closed} task(s) closed"
    )
    if closed_rep:
        summary += f"; {closed_rep} of the owner's own follow-up task(s) closed"
    ctx.verdict(rule_id, True, summary, *explanation.evidence, fact("reason", reason))
    if rule_id != NURTURE:
        ctx.verdict(NURTURE, True, f"enrolled because of rule {rule_id}", fact("nurture", nurture_list))


def decide_end(ctx: Context, qual_gaps: list[str]) -> bool:
    """Whether the deal's active follow-up ends now (stop or nurture); records the actions if so."""
    rules = ctx.rules
    qualified = not qual_gaps
    criterion = stop_criterion(ctx)
    if criterion is not None:
        reason, explanation = criterion
        if qualified and rules.stop.qualified_deals == "nurture" and can_nurture(rules):
            enter_nurture(ctx, STOP, reason, explanation)
        else:
            enter_stop(ctx, STOP, reason, explanation)
        return True
    qual = rules.qualification
    if qual_gaps and qual.stop_after is not None:
        reference = _floor(ctx, ctx.deal.created_at)
        if ctx.calendar.passed(reference, qual.stop_after, ctx.now):
            explanation = Explanation(
                f"unqualified since {day(reference, ctx.calendar)} (limit {qual.stop_after})",
                (fact("missing", ", ".join(qual_gaps)),),
            )
            enter_stop(ctx, QUALIFICATION, rules.stop.reasons.unqualified, explanation)
            return True
    step = rules.next_step
    step_gaps = next_step_gaps(ctx) if step.enabled and step.escalate != "none" and not qual_gaps else []
    if step_gaps:
        deadline = next_step_overdue(ctx)
        if deadline is not None:
            explanation = Explanation(
                f"next step still incomplete after the grace period of {step.grace}",
                (
                    fact("missing", ", ".join(step_gaps)),
                    fact("grace ended", day(deadline, ctx.calendar)),
                ),
            )
            reason = rules.stop.reasons.no_next_step
            if step.escalate == "nurture" and can_nurture(rules):
                enter_nurture(ctx, NEXT_STEP, reason, explanation)
            else:
                enter_stop(ctx, NEXT_STEP, reason, explanation)
            return True
    nurture = rules.nurture
    if qualified and can_nurture(rules) and nurture.on_not_now and ctx.deal.readiness == "not_now":
        explanation = Explanation(
            "qualified, but the customer is not ready now", (fact("readiness", "not_now"),)
        )
        enter_nurture(ctx, NURTURE, "Qualified, not ready now", explanation)
        return True
    return False
