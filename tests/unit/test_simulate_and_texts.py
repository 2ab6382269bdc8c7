"""The simulated effect of actions, task templates, and the per-contact touch budget."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from policies.engine import evaluate
from policies.model import (
    ChangeStage,
    CreateTask,
    DealField,
    Explanation,
    FollowupState,
    Outcome,
    Readiness,
    SetDealFields,
    TaskType,
)
from policies.planner import plan
from policies.simulate import apply_actions, task_id_for
from policies.templates import TemplateError, parse_template
from tests.unit.builders import NOW, call, deal, email_out, policy

DAY = timedelta(days=1)


def test_created_tasks_appear_in_auto_tasks_with_their_keys() -> None:
    """A CreateTask becomes an open auto-task with the action's key, rule, due date and type."""
    d = deal(activities=(call("c", NOW - 8 * DAY, Outcome.CONNECTED),))
    (create,) = evaluate(policy(), d, NOW).actions
    assert isinstance(create, CreateTask)
    (task,) = apply_actions(d, (create,), NOW).auto_tasks
    assert (task.id, task.key, task.rule_id, task.is_open) == (
        task_id_for(create.key),
        create.key,
        create.rule_id,
        True,
    )
    assert task.due_at == create.due_at
    assert task.task_type is TaskType.CALL


def test_set_deal_fields_updates_the_canonical_fields_and_keeps_the_others() -> None:
    """Canonical fields land on the deal's attributes; any other CRM field lands in ``fields``."""
    action = SetDealFields(
        key="k",
        deal_id="d1",
        rule_id="r",
        explanation=Explanation("x"),
        fields={
            DealField.NEXT_STEP_WHY: "Budget",
            DealField.NEXT_STEP_DATE: date(2026, 4, 1),
            DealField.READINESS: "not_now",
            DealField.FOLLOWUP_STATE: "nurture",
            DealField.FOLLOWUP_STATE_SINCE: NOW,
            DealField.AGREED_INTERVAL_DAYS: 14,
            "budget_confirmed": True,
        },
    )
    after = apply_actions(deal(), (action,), NOW)
    assert after.next_step.why == "Budget"
    assert after.next_step.when == date(2026, 4, 1)
    assert after.readiness is Readiness.NOT_NOW
    assert after.followup_state is FollowupState.NURTURE
    assert after.followup_state_since == NOW
    assert after.agreement.interval_days == 14
    assert after.fields["budget_confirmed"] is True
    assert after.modified_at == NOW


def test_a_stage_change_with_a_close_reason_closes_the_deal() -> None:
    """Without pipeline data, a stage change carrying a close reason counts as closed lost."""
    move = ChangeStage(
        key="k", deal_id="d1", rule_id="stop", explanation=Explanation("x"), pipeline_id="default",
        stage_id="closedlost", close_reason="No response",
    )  # fmt: skip
    after = apply_actions(deal(), (move,), NOW)
    assert after.stage.is_closed
    assert after.stage_entered_at == NOW
    assert after.fields[DealField.CLOSE_REASON] == "No response"


def test_actions_for_other_deals_change_nothing() -> None:
    """apply_actions ignores actions addressed to another deal and returns the deal unchanged."""
    d = deal("d1")
    other = evaluate(
        policy(), deal("d2", activities=(call("c", NOW - 8 * DAY, Outcome.CONNECTED),)), NOW
    ).actions
    assert apply_actions(d, other, NOW) is d


def test_templates_render_named_fields_only() -> None:
    """A template fills in its named fields, keeps doubled braces literal and leaves nothing executable."""
    template = parse_template("Call {contact} about {deal_name} {{ref}}")
    assert template.render({"contact": "Kim", "deal_name": "Acme"}) == "Call Kim about Acme {ref}"
    assert template.fields == frozenset({"contact", "deal_name"})


def test_a_template_field_without_a_value_renders_as_nothing() -> None:
    """Missing values leave a gap (the slow path), and braces in the values are never re-read."""
    template = parse_template("{{{contact}}} met {deal_name}: {missing}.")
    assert template.render({"contact": "{owner}", "deal_name": "Acme"}) == "{{owner}} met Acme: ."
    assert template.render({"contact": "Kim", "deal_name": "A}", "missing": "why"}) == "{Kim} met A}: why."


@pytest.mark.parametrize(
    "source",
    ["{deal_name.__class__}", "{evidence[0]}", "{0}", "{}", "{contact!r}", "{deal_name:>9}", "{oops", "}"],
)
def test_templates_refuse_anything_but_plain_known_names(source: str) -> None:
    """Attribute and index access, positional fields, conversions, specs and bad braces are refused."""
    with pytest.raises(TemplateError):
        parse_template(source)


def test_touch_budget_defers_a_call_to_a_contact_touched_three_times_this_week() -> None:
    """Three outbound touches to a contact within seven days hold back a fourth until the window frees."""
    touches = (
        call("t1", NOW - 5 * DAY),
        email_out("t2", NOW - 3 * DAY),
        call("t3", NOW - 2 * DAY),
    )
    busy = replace(deal("busy", activities=touches), agreement=replace(deal().agreement, interval_days=None))
    quiet = deal("quiet", activities=(call("q", NOW - 8 * DAY, Outcome.CONNECTED),))
    # Both deals share contact c1; the follow-up on "quiet" would be the fourth touch this week.
    result = plan(policy(), (busy, quiet), NOW, {})
    deferred = {d.action.deal_id: d for d in result.deferred}
    assert "quiet" in deferred
    assert deferred["quiet"].not_before == date(2026, 3, 6)  # the touch of 5 days ago leaves the window
    assert "touches in 7 days" in deferred["quiet"].reason
