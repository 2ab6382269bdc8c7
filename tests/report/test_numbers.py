"""The report's numbers from a state store written by hand: each one is what the store says it is.

Every table the report draws comes from the mirror, the ledger, the audit and the runs; here each of them
holds a known history, and the page must show exactly that (on SQLite, and on PostgreSQL when given).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from policies.model import (
    AutoTask,
    CloseReason,
    CloseTask,
    CreateTask,
    DealField,
    Explanation,
    FieldValue,
    FollowupState,
    NextStep,
    Owner,
    SetDealFields,
    make_key,
)
from report import AccountSource, ReportRequest, build_page, render_html
from report.model import Page, Table
from store import AuditEntry, Result, StateStore
from tests.unit.builders import GOOD_STEP, NOW, deal, policy, reply

POLICY = policy()
WHY = Explanation("test")
SOURCE = AccountSource(
    name="acme",
    crm="hubspot",
    policy=POLICY,
    shadow=False,
    deal_url="https://app.hubspot.com/contacts/42/deal/{id}",
    budget_share=0.5,
    explain="followup explain --settings s.yaml --account acme --deal {id}",
)


def task(key: str, rule: str, *, open_: bool) -> AutoTask:
    return AutoTask(f"t-{key}", key, rule, NOW - timedelta(days=2), NOW - timedelta(days=1), is_open=open_)


def create(key: str, deal_id: str, rule: str) -> CreateTask:
    return CreateTask(
        key=key,
        deal_id=deal_id,
        rule_id=rule,
        explanation=WHY,
        owner_id="o1",
        subject="s",
        body="b",
        due_at=NOW,
    )


def close(task_key: str, deal_id: str, reason: CloseReason) -> CloseTask:
    return CloseTask(
        key=make_key("close", task_key),
        deal_id=deal_id,
        rule_id="task_expiry",
        explanation=WHY,
        task_id=f"t-{task_key}",
        task_key=task_key,
        reason=reason,
    )


def state(key: str, deal_id: str, rule: str, to: FollowupState, reason: str) -> SetDealFields:
    fields: dict[str, FieldValue] = {DealField.FOLLOWUP_STATE: to.value, DealField.FOLLOWUP_REASON: reason}
    return SetDealFields(key=key, deal_id=deal_id, rule_id=rule, explanation=WHY, fields=fields)


def fill(store: StateStore) -> None:
    """Five open deals of two owners, a nurtured one; tasks with known fates; stops; runs; a deferral."""
    store.record_owners(
        "acme", [Owner("o1", "Ann <Rep>", team="North"), Owner("o2", "Bo", team="South")], NOW
    )
    deals = [
        deal("d1", next_step=GOOD_STEP, owner_id="o1"),
        deal("d2", next_step=NextStep("follow up", "budget", GOOD_STEP.when), owner_id="o1", amount=90_000),
        deal(
            "d3",
            next_step=NextStep(),
            owner_id="o2",
            interval_days=14,
            activities=(reply("r", NOW - timedelta(days=28)),),
        ),
        deal("d4", next_step=NextStep("Send the order form", None, GOOD_STEP.when), owner_id="o2"),
        deal("d5", owner_id="o2"),
    ]
    nurtured = deal("d6", owner_id="o1")
    object.__setattr__(nurtured, "followup_state", FollowupState.NURTURE)
    done, still_open = task("k-done", "next_step", open_=False), task("k-open", "agreed_interval", open_=True)
    object.__setattr__(deals[0], "auto_tasks", (done, still_open))
    store.store_batch("acme", "run1", [*deals, nurtured], (), {"after": "x"}, NOW - timedelta(hours=3))

    created = [
        create("k-done", "d1", "next_step"),
        create("k-open", "d1", "agreed_interval"),
        create("k-expired", "d2", "agreed_interval"),
        create("k-settled", "d3", "next_step"),
        create("k-gone", "d9", "qualification"),
    ]
    closes = [close("k-expired", "d2", CloseReason.EXPIRED), close("k-settled", "d3", CloseReason.SETTLED)]
    changes = [
        state("s1", "d7", "stop", FollowupState.STOPPED, "No response after repeated outreach"),
        state("s2", "d8", "next_step", FollowupState.STOPPED, "No next step agreed"),
        state("s3", "d6", "stop", FollowupState.NURTURE, "No response after repeated outreach"),
        state("s4", "d10", "nurture", FollowupState.ACTIVE, "Reactivated: reply"),
    ]
    written = created + closes + changes
    at = NOW - timedelta(days=1)
    store.record_actions("acme", "run1", written, "intent", at)
    store.record_results("acme", [Result(a.key, "applied") for a in written], [], at)
    failed = create("k-failed", "d4", "decision_maker")
    store.record_actions("acme", "run1", [failed], "intent", at)
    store.record_results("acme", [Result(failed.key, "failed", message="VALIDATION_ERROR on task")], [], at)
    store.record_actions("acme", "run1", [create("k-shadow", "d5", "next_step")], "shadow", at)
    old = create("k-old", "d5", "next_step")  # before the period: not counted
    store.record_actions("acme", "run0", [old], "intent", NOW - timedelta(days=60))
    store.record_results("acme", [Result(old.key, "applied")], [], NOW - timedelta(days=60))
    store.record_audit(
        "acme",
        "run1",
        "enforce",
        at,
        [
            AuditEntry("d4", "agreed_interval", True, "deferred", "budget", (), ("k-x",)),
            AuditEntry("d5", "next_step", True, "deferred", "budget", (), ("k-y",)),
            AuditEntry("d2", "next_step", True, "planned", "asked", (("what", '"follow up"'),), ("k-z",)),
        ],
    )
    for i, (status, calls) in enumerate([("ok", 40), ("ok", 60), ("retry_later", 10)]):
        started = NOW - timedelta(days=1, hours=i)
        store.start_run(f"run{i + 1}", "acme", "h:1", False, started)
        error = "RetryLater: 429" if status == "retry_later" else None
        store.finish_run(
            f"run{i + 1}",
            status,
            {"rejected": i},
            calls,
            error,
            started + timedelta(seconds=30 + i),
            api_daily_limit=1000,
        )


def page_for(store: StateStore, since: timedelta = timedelta(days=30)) -> Page:
    return build_page(ReportRequest(store, (SOURCE,), NOW - since, NOW, deal_rows=3))


def tile(page: Page, key: str) -> str:
    return next(t.value for s in page.sections for t in s.tiles if t.key == key)


def table(page: Page, table_id: str) -> list[dict[str, str]]:
    for section in page.sections:
        for block in section.blocks:
            found: Table = block if isinstance(block, Table) else block.table
            if found.id == table_id:
                return [
                    {c.name: cell.text for c, cell in zip(found.columns, row, strict=True)}
                    for row in found.rows
                ]
    raise AssertionError(f"no table {table_id}")


def test_hygiene_counts_each_open_deal_by_the_engine_s_judgement(store: StateStore) -> None:
    fill(store)
    page = page_for(store)
    assert tile(page, "open_deals") == "5"  # d6 is in nurture
    assert tile(page, "next_step_complete") == "2"  # d1, d5
    assert tile(page, "in_nurture") == "1"
    assert tile(page, "followups_overdue") == "1"  # d3: a reply 28 days ago, 14 days agreed, no call
    owners = {r["owner"]: r for r in table(page, "table-next-step")}
    assert [owners["Ann <Rep>"][k] for k in ("open", "complete", "vague", "missing", "nurture")] == [
        "2",
        "1",
        "1",
        "0",
        "1",
    ]
    assert [owners["Bo"][k] for k in ("open", "complete", "incomplete", "missing", "team")] == [
        "3",
        "1",
        "1",
        "1",
        "South",
    ]
    teams = {r["team"]: r for r in table(page, "table-teams")}
    assert (teams["North"]["open"], teams["South"]["overdue"]) == ("2", "1")


def test_deal_lists_are_bounded_and_link_to_the_crm_and_the_evidence(store: StateStore) -> None:
    fill(store)
    page = page_for(store)
    listed = table(page, "table-list-next-step")
    assert [r["deal_id"] for r in listed] == ["d2", "d3", "d4"]  # the largest amount first
    assert listed[0]["issue"] == "what is vague"
    assert {d.deal_id for d in page.deals} >= {"d2", "d3", "d4", "d7", "d8"}
    evidence = next(d for d in page.deals if d.deal_id == "d2")
    assert evidence.crm_url == "https://app.hubspot.com/contacts/42/deal/d2"
    assert evidence.explain == "followup explain --settings s.yaml --account acme --deal d2"
    assert {v.rule for v in evidence.verdicts} >= {"next_step", "stop"}
    assert [(a.rule, a.outcome) for a in evidence.audit] == [("next_step", "planned")]
    gone = next(d for d in page.deals if d.deal_id == "d7")  # stopped, no longer mirrored
    assert (gone.verdicts, gone.name) == ((), "(no longer in the mirror)")


def test_task_fates_come_from_the_ledger_and_the_mirror(store: StateStore) -> None:
    fill(store)
    page = page_for(store)
    assert tile(page, "tasks_created") == "5"  # written in the period; not the failed, shadow or old one
    assert tile(page, "tasks_done_by_reps") == "1"
    fates = {r["rule"]: r for r in table(page, "table-task-fates")}
    assert fates["next_step"]["done_by_the_rep"] == "1"
    assert fates["next_step"]["settled"] == "1"
    assert fates["next_step"]["shadow"] == "1"
    assert fates["agreed_interval"]["open"] == "1"
    assert fates["agreed_interval"]["expired"] == "1"
    assert fates["qualification"]["left_the_mirror"] == "1"


def test_state_changes_and_deferrals_by_reason(store: StateStore) -> None:
    fill(store)
    page = page_for(store)
    assert (tile(page, "deals_stopped"), tile(page, "deals_nurtured"), tile(page, "deals_reactivated")) == (
        "2",
        "1",
        "1",
    )
    outcomes = {(r["outcome"], r["reason"]): r["applied"] for r in table(page, "table-outcomes")}
    assert outcomes[("stopped", "No response after repeated outreach")] == "1"
    assert outcomes[("stopped", "No next step agreed")] == "1"
    assert tile(page, "actions_deferred") == "2"


def test_operations_from_runs_cursors_and_the_ledger(store: StateStore) -> None:
    fill(store)
    page = page_for(store)
    assert tile(page, "cycles") == "3"
    assert tile(page, "cycles_not_ok") == "1"
    assert tile(page, "api_calls") == "110"
    assert tile(page, "rejected_records") == "3"
    assert tile(page, "busiest_day_budget") == "22.0%"  # 110 calls on one day / (1000 x 0.5)
    assert tile(page, "oldest_cursor") == "3 h 0 min"
    (account,) = table(page, "table-accounts")
    assert (account["budget"], account["p50"], account["max"]) == ("500", "31.0", "32.0")
    (failure,) = table(page, "table-not-written")
    assert (failure["status"], failure["error"], failure["n"]) == ("failed", "VALIDATION_ERROR on task", "1")
    (problem,) = table(page, "table-problems")
    assert problem["status"] == "retry_later"


def test_a_shorter_period_counts_less(store: StateStore) -> None:
    fill(store)
    page = page_for(store, since=timedelta(hours=12))
    assert (tile(page, "tasks_created"), tile(page, "cycles"), tile(page, "api_calls")) == ("0", "0", "0")
    assert tile(page, "open_deals") == "5"  # the mirror is as of now, whatever the period


def test_names_from_the_crm_are_escaped_everywhere(store: StateStore) -> None:
    """A name with markup shows as text in tables and charts; no element is injected."""
    fill(store)
    html = render_html(page_for(store))
    assert "Ann <Rep>" not in html
    assert "Ann &lt;Rep&gt;" in html
    assert html.count("<script") == 3  # the sorter, its number plugin, and the line that starts them


def test_two_processes_reading_halves_of_the_mirror_give_the_same_page(store: StateStore) -> None:
    """A large mirror is read by two processes; forced on this small one, every number is the same."""
    fill(store)

    def numbers(parallel_from: int | None) -> tuple[Any, ...]:
        page = build_page(ReportRequest(store, (SOURCE,), NOW - timedelta(days=30), NOW, 3, parallel_from))
        tables = [
            table(page, t) for t in ("table-next-step", "table-teams", "table-followups", "table-touches")
        ]
        lists = [table(page, f"table-list-{n}") for n in ("next-step", "overdue", "touches", "stage")]
        tiles = [(t.key, t.value) for s in page.sections for t in s.tiles]
        return tables, lists, tiles, table(page, "table-task-fates")

    assert numbers(1) == numbers(None)
