"""Pipeline hygiene in the engine's terms (``policies.hygiene``): the report counts what the rules judge."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from policies.engine import evaluate
from policies.hygiene import assess
from policies.model import Activity, ActivityKind, Direction, NextStep, Outcome
from tests.unit.builders import GOOD_STEP, NOW, OWNER, call, deal, email_out, policy, reply

POLICY = policy()
FUTURE = date(2026, 3, 20)


@pytest.mark.parametrize(
    ("step", "status", "gaps"),
    [
        (GOOD_STEP, "complete", ()),
        (NextStep(None, None, None), "missing", ("what", "why", "when")),
        (NextStep("follow up", "budget", FUTURE), "vague", ("what is vague",)),
        (NextStep("nachfassen nächste Woche", "Budget", FUTURE), "vague", ("what is vague",)),
        (NextStep("återkomma", "budget", FUTURE), "vague", ("what is vague",)),
        (NextStep("Send the signed order form", None, FUTURE), "incomplete", ("why",)),
        (NextStep("Send the signed order form", "legal asked", None), "incomplete", ("when",)),
        (
            NextStep("Send the signed order form", "legal asked", date(2026, 3, 1)),
            "incomplete",
            ("when 2026-03-01 has passed",),
        ),
    ],
)
def test_next_step_status_uses_the_rule_s_own_gaps(
    step: NextStep, status: str, gaps: tuple[str, ...]
) -> None:
    """The report's buckets come from the next_step rule's gaps, languages and fillers included."""
    found = assess(POLICY, deal(next_step=step), NOW, OWNER)
    assert (found.step, found.gaps) == (status, gaps)


def test_a_scope_without_the_next_step_rule_is_not_judged() -> None:
    """Where an override switches the rule off, the deal's next step is not required (not 'missing')."""
    scoped = policy(
        """
        overrides:
          - name: no next step for small deals
            when: {amount: {max: 5000}}
            rules: {next_step: {enabled: false}}
        """
    )
    small = assess(scoped, deal(amount=1000, next_step=NextStep()), NOW, OWNER)
    large = assess(scoped, deal(amount=9000, next_step=NextStep()), NOW, OWNER)
    assert (small.step, large.step) == ("not_required", "missing")


def test_the_report_and_the_next_step_rule_agree() -> None:
    """A deal the report counts as complete gets no next-step request; an incomplete one gets one."""
    for step in (GOOD_STEP, NextStep("follow up", "x", FUTURE), NextStep()):
        judged = assess(POLICY, deal(next_step=step), NOW, OWNER)
        verdict = {v.rule_id: v for v in evaluate(POLICY, deal(next_step=step), NOW, OWNER).verdicts}
        asked = verdict["next_step"].fired
        assert asked == (judged.step != "complete"), step


def test_unanswered_touches_are_the_stop_rule_s_count() -> None:
    """Outbound touches without an answer since the last conversation, across channels."""
    history = (
        reply("r1", NOW - timedelta(days=20)),
        call("c1", NOW - timedelta(days=15)),
        email_out("e1", NOW - timedelta(days=10)),
        call("c2", NOW - timedelta(days=5)),
    )
    found = assess(POLICY, deal(activities=history), NOW, OWNER)
    assert found.unanswered == 3
    assert found.last_signal_at == NOW - timedelta(days=20)
    assert found.days_in_stage == 20


def _reply(days_ago: float) -> Activity:
    return reply("r", NOW - timedelta(days=days_ago))


def _connected(activity_id: str, days_ago: float) -> Activity:
    return call(activity_id, NOW - timedelta(days=days_ago), Outcome.CONNECTED)


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        # 14 days agreed on Wed 2026-02-04 -> due Wed 2026-02-18; the rep called on the 18th: on time.
        ((_reply(28), call("c", NOW - timedelta(days=14))), [("on_time", "2026-02-18")]),
        # ... called on the 24th: late; on the 10th: early.
        ((_reply(28), call("c", NOW - timedelta(days=8))), [("late", "2026-02-24")]),
        ((_reply(28), call("c", NOW - timedelta(days=22))), [("early", "2026-02-10")]),
        # nobody called: overdue now; a conversation 3 days ago: not due yet.
        ((reply("r", NOW - timedelta(days=28)),), [("overdue", None)]),
        ((reply("r", NOW - timedelta(days=3)),), [("not_due", None)]),
        # the customer wrote again before the rep called: no follow-up was owed for the first reply.
        (
            (reply("r1", NOW - timedelta(days=28)), reply("r2", NOW - timedelta(days=20))),
            [("overdue", None)],
        ),
        # a connected follow-up is itself a conversation: the next follow-up is due 14 days after it.
        (
            (reply("r", NOW - timedelta(days=28)), _connected("c", 14)),
            [("on_time", "2026-02-18"), ("not_due", None)],
        ),
    ],
)
def test_agreed_follow_ups_are_judged_by_the_due_day(
    history: tuple[Activity, ...], expected: list[tuple[str, str | None]]
) -> None:
    """Due = the conversation plus the agreed interval in the owner's business calendar; the first outbound
    touch after the conversation is the follow-up."""
    found = assess(POLICY, deal(activities=history, interval_days=14), NOW, OWNER)
    got = [(f.status, f.touched_on.isoformat() if f.touched_on else None) for f in found.followups]
    assert got == expected


def test_without_an_agreed_interval_no_follow_up_is_judged() -> None:
    history = (reply("r", NOW - timedelta(days=28)),)
    assert assess(POLICY, deal(activities=history), NOW, OWNER).followups == ()


def test_notes_and_inbound_touches_are_not_follow_ups() -> None:
    note = Activity("n", ActivityKind.NOTE, Direction.OUTBOUND, NOW - timedelta(days=10), Outcome.UNKNOWN)
    history = (reply("r", NOW - timedelta(days=28)), note)
    found = assess(POLICY, deal(activities=history, interval_days=14), NOW, OWNER)
    assert [f.status for f in found.followups] == ["overdue"]
    assert found.followups[0].due == date(2026, 2, 18)


def test_follow_ups_due_before_the_period_are_not_judged() -> None:
    """``since`` leaves out follow-ups made for conversations that fell due before it; the last one stays."""
    history = (
        _reply(60),
        call("c1", NOW - timedelta(days=46)),  # Sat 01-17; due Mon 01-19 (the 17th is a Saturday): early
        _reply(28),
        call("c2", NOW - timedelta(days=14)),  # due 2026-02-18: on time
        _reply(10),
    )
    everything = assess(POLICY, deal(activities=history, interval_days=14), NOW, OWNER)
    recent = assess(
        POLICY, deal(activities=history, interval_days=14), NOW, OWNER, since=NOW - timedelta(days=20)
    )
    assert [f.status for f in everything.followups] == ["early", "on_time", "not_due"]
    assert [f.status for f in recent.followups] == ["on_time", "not_due"]
    assert recent.followups[0].due == date(2026, 2, 18)
