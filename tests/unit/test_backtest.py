"""The backtest on hand-built histories, with exact outcomes: false kills and true stops by stop setting,
agreed-interval compliance (a 14-day callback made on day 20 is late), and the API cost model."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from policies.api_costs import cycle_calls
from policies.backtest import Period, history_notes, run_backtest
from policies.codec import Snapshot
from policies.history import DealHistory, FieldChange, SnapshotHistory
from policies.model import (
    Activity,
    ActivityKind,
    Agreement,
    ChangeStage,
    CloseReason,
    CloseTask,
    CreateTask,
    Deal,
    Direction,
    EnrolInNurture,
    Explanation,
    Outcome,
    Owner,
    Pipeline,
    ReactivateFromNurture,
    SetDealFields,
    UpdateTask,
)
from policies.sweep import parse_sweep, variants
from tests.unit.builders import OWNER, call, deal, policy, reply, stage

PIPELINES = (
    Pipeline(
        "default",
        "Sales",
        tuple(stage(s) for s in ("qualifiedtobuy", "negotiation", "contractsent", "closedwon", "closedlost")),
    ),
)
OWNERS = (Owner("o1", "Alex Rep", time_zone="UTC", team="north"),)
START = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)  # a Monday
PERIOD = Period(date(2026, 1, 5), date(2026, 3, 31), timedelta(hours=1))
TAKEN = datetime(2026, 4, 15, 12, 0, tzinfo=UTC)


def _report(deals: list[Deal], histories: dict[str, DealHistory], sweep: str | None = None) -> dict[str, Any]:
    snapshot = Snapshot("hubspot", OWNERS, PIPELINES, tuple(deals), TAKEN, SnapshotHistory(histories))
    chosen = variants([("test", policy())], [parse_sweep(sweep)] if sweep else [])
    return run_backtest(snapshot, chosen, PERIOD)


def _silent_then(deal_id: str, touches: int, end_stage: str, end_at: datetime) -> tuple[Deal, DealHistory]:
    """A conversation, then ``touches`` weekly unanswered calls, then (for a win) a reply; the stage goes to
    ``end_stage`` at ``end_at``."""
    activities = [reply(f"{deal_id}-r0", START - timedelta(days=1))]
    activities += [call(f"{deal_id}-c{n}", START + timedelta(days=7 * (n + 1))) for n in range(touches)]
    if end_stage == "closedwon":
        activities.append(reply(f"{deal_id}-r1", end_at - timedelta(days=11)))
    found = deal(deal_id, activities=tuple(activities), created=START - timedelta(days=3), stage_id=end_stage)
    history = DealHistory(
        (
            FieldChange(found.created_at, "stage", "qualifiedtobuy"),
            FieldChange(end_at, "stage", end_stage),
        )
    )
    return found, history


def test_a_deal_won_after_8_unanswered_touches_is_a_false_kill_at_6_and_not_at_10() -> None:
    """Stopped at the 6th unanswered call (2026-02-16) with max 6, then won on 2026-03-20: a false kill with
    its evidence; with max 10 the policy never stops it."""
    won, history = _silent_then("won-late", 8, "closedwon", datetime(2026, 3, 20, 11, 0, tzinfo=UTC))
    report = _report([won], {"won-late": history}, "stop.max_unanswered_touches=6,10")
    at_six, at_ten = report["variants"]
    assert at_six["account"]["stops"]["false_kills"] == 1
    assert at_six["account"]["stops"]["false_kills_won"] == 1
    assert at_six["account"]["stops"]["false_kill_amount"] == 10_000
    [kill] = at_six["false_kills"]
    assert (kill["deal_id"], kill["kind"], kill["rule"]) == ("won-late", "stop", "stop")
    assert kill["stopped_on"] == "2026-02-16"
    assert kill["stopped_at"] == "2026-02-16T15:00:00+00:00"  # the cycle after the 14:30 call
    assert kill["outcome"] == "won"
    assert kill["outcome_on"] == "2026-03-20"
    assert kill["summary"] == "6 outbound touches without an answer (limit 6)"
    assert {"label": "unanswered touches", "value": "6"} in kill["evidence"]
    assert {"label": "stage", "value": "closedwon on 2026-03-20"} in kill["after_the_stop"]
    assert at_six["owners"]["o1"]["stops"]["false_kills"] == 1
    assert at_six["teams"]["north"]["stops"]["false_kills"] == 1
    assert at_ten["false_kills"] == []
    assert at_ten["account"]["stops"]["stopped"] == 0
    assert at_ten["account"]["busy_work"]["tasks_created"] > 0  # it kept following up instead


def test_a_deal_lost_anyway_after_the_stop_is_a_true_stop_with_the_days_saved() -> None:
    """Stopped at the 6th unanswered call on 2026-02-16 15:00, closed lost by the rep on 2026-03-10 15:00:
    a true stop that saved 22 days of pipeline attention."""
    lost, history = _silent_then("lost-late", 9, "closedlost", datetime(2026, 3, 10, 15, 0, tzinfo=UTC))
    report = _report([lost], {"lost-late": history}, "stop.max_unanswered_touches=6")
    [variant] = report["variants"]
    assert variant["false_kills"] == []
    [stop] = variant["true_stops"]
    assert (stop["deal_id"], stop["outcome"], stop["outcome_on"]) == ("lost-late", "lost", "2026-03-10")
    assert stop["days_saved"] == 22.0
    assert variant["account"]["stops"]["true_stops"] == 1
    assert variant["account"]["stops"]["days_saved"] == 22.0


def _callback(deal_id: str, called_back_after: int | None) -> tuple[Deal, DealHistory]:
    """A connected call on Wed 2026-01-07 10:00 agreeing a 14-day callback, and the callback (a call) that
    many days later, or none."""
    talk = datetime(2026, 1, 7, 10, 0, tzinfo=UTC)
    activities = [call(f"{deal_id}-talk", talk, Outcome.CONNECTED)]
    if called_back_after is not None:
        activities.append(
            call(f"{deal_id}-back", talk + timedelta(days=called_back_after), Outcome.CONNECTED)
        )
    found = deal(deal_id, activities=tuple(activities), created=talk - timedelta(days=10), interval_days=14)
    history = DealHistory((FieldChange(talk + timedelta(minutes=5), "agreed_interval_days", 14),))
    return found, history


@pytest.mark.parametrize(
    ("called_back_after", "verdict", "late_by"),
    [(20, "late", 4.0), (14, "on_time", 0.0), (15, "on_time", 0.0), (9, "early", 0.0), (None, "never", 0.0)],
)
def test_a_14_day_callback_made_on_day_20_is_late(
    called_back_after: int | None, verdict: str, late_by: float
) -> None:
    """Due Wed 2026-01-21 (tolerance one business day either side): day 20 (Tue 01-27) is late by four
    business days, day 14 and 15 are on time, day 9 early, no callback at all is never."""
    found, history = _callback("cb", called_back_after)
    compliance = _report([found], {"cb": history})["compliance"]
    counts = compliance["account"]
    assert counts["agreements"] >= 1
    assert counts[verdict] == 1
    assert counts["business_days_late"]["max"] == late_by
    assert compliance["owners"]["o1"][verdict] == 1
    assert compliance["teams"]["north"][verdict] == 1


def test_compliance_needs_no_policy_and_ignores_conversations_without_an_agreement() -> None:
    """A deal that never recorded an interval owes no agreed follow-up."""
    found, _ = _callback("plain", 20)
    plain = replace(found, agreement=Agreement())
    compliance = _report([plain], {"plain": DealHistory()})["compliance"]
    assert compliance["account"]["agreements"] == 0


def _explained() -> Explanation:
    return Explanation("test")


def test_api_costs_follow_the_connectors_batching() -> None:
    """150 new tasks, 3 closes, 2 updates, writes on 2 deals, 3 contacts enrolled and 1 removed."""
    now = datetime(2026, 3, 2, 9, tzinfo=UTC)
    actions: list[Any] = [
        CreateTask(
            key=f"k{n}",
            deal_id=f"d{n}",
            rule_id="agreed_interval",
            explanation=_explained(),
            owner_id="o1",
            subject="s",
            body="b",
            due_at=now,
        )
        for n in range(150)
    ]
    actions += [
        CloseTask(
            key=f"c{n}",
            deal_id="d1",
            rule_id="stop",
            explanation=_explained(),
            task_id=f"t{n}",
            task_key=f"k{n}",
            reason=CloseReason.EXPIRED,
        )
        for n in range(3)
    ]
    actions += [
        UpdateTask(
            key=f"u{n}",
            deal_id="d1",
            rule_id="signals",
            explanation=_explained(),
            task_id=f"t{n}",
            task_key=f"k{n}",
            due_at=now,
        )
        for n in range(2)
    ]
    actions += [
        ChangeStage(
            key="s1",
            deal_id="d1",
            rule_id="stop",
            explanation=_explained(),
            pipeline_id="default",
            stage_id="closedlost",
            close_reason="x",
            expected_modified_at=now,
        ),
        SetDealFields(
            key="f1",
            deal_id="d1",
            rule_id="stop",
            explanation=_explained(),
            fields={"a": 1},
            expected_modified_at=now,
        ),
        SetDealFields(key="f2", deal_id="d2", rule_id="nurture", explanation=_explained(), fields={"a": 1}),
        EnrolInNurture(
            key="e1",
            deal_id="d2",
            rule_id="nurture",
            explanation=_explained(),
            contact_ids=("c1", "c2", "c3"),
            nurture="N",
        ),
        ReactivateFromNurture(
            key="r1",
            deal_id="d3",
            rule_id="nurture",
            explanation=_explained(),
            contact_ids=("c9",),
            nurture="N",
        ),
    ]
    calls = cycle_calls(actions)
    assert dict(calls["hubspot"]) == {
        "tasks.batch_create": 2,
        "tasks.batch_update": 1,
        "deals.batch_read": 1,
        "deals.batch_update": 1,
        "lists.memberships_add": 1,
        "lists.memberships_remove": 1,
    }
    assert dict(calls["salesforce"]) == {
        "collections.create": 1,  # 150 tasks + 3 members in one collection of 200
        "collections.update": 1,  # 5 task changes + 2 opportunities
        "collections.delete": 1,
        "query.opportunity_stamps": 1,  # only d1 carries expected_modified_at
        "query.campaign_members": 1,
    }
    assert cycle_calls([]) == {"hubspot": {}, "salesforce": {}}


def test_activity_kinds_in_the_builders_are_what_the_rules_count() -> None:
    """Guard for the hand-built histories above: the calls are outbound, unanswered unless connected."""
    unanswered = call("x", START)
    assert (unanswered.kind, unanswered.direction, unanswered.outcome) == (
        ActivityKind.CALL,
        Direction.OUTBOUND,
        Outcome.NO_ANSWER,
    )
    assert isinstance(reply("y", START), Activity)
    assert OWNER.id == OWNERS[0].id


def test_history_notes_say_where_the_figures_are_approximate_and_nothing_when_they_are_not() -> None:
    """One wording for the HTML report and the terminal: each gap of the history is one sentence."""
    clean = {
        "since": "2026-01-05",
        "untracked_fields": [],
        "starts_before_history": False,
        "unknown_stages": [],
    }
    assert history_notes(clean) == []
    gaps = {
        "since": "2026-01-05",
        "untracked_fields": ["amount", "owner_id"],
        "starts_before_history": True,
        "unknown_stages": ["default/old"],
    }
    assert history_notes(gaps) == [
        "Approximated (no history kept; the current value throughout): amount, owner_id",
        "The period starts before the history does (2026-01-05): early days are approximated.",
        "Stages in the history but not in the pipelines (treated as open): default/old",
    ]
