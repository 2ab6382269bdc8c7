"""The rollout section's numbers from a state store written by hand, and the intervals behind them.

Four deals of an owner inside a canary rollout (enforced) and four outside it (shadow), each with a known
follow-up, the customer's answers after it and a stop; one held decision the engine still makes now and
four it no longer makes. The page must show exactly those shares, medians and rates, with the intervals
computed from the same counts.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta

import pytest

from policies.engine import evaluate
from policies.model import FollowupState, Owner
from report import ReportRequest, build_page
from report.model import Page, Table
from report.stats import median_interval, poisson_rate, wilson
from store import AuditEntry, Result, StateStore
from tests.report.test_numbers import SOURCE, create, state
from tests.unit.builders import NOW, deal, reply

FOLLOWED_UP = NOW - timedelta(days=10)


def fill(store: StateStore) -> str:
    store.record_owners("acme", [Owner("o1", "Ann", team="North"), Owner("o2", "Bo", team="South")], NOW)
    answered = {
        "e1": NOW - timedelta(days=8),  # two days after the follow-up
        "e2": NOW - timedelta(days=8),
        "e3": NOW - timedelta(days=1),  # nine days after: outside the 7-day window
        "s1": NOW - timedelta(days=9),  # one day after
    }
    deals = [
        deal(d, owner_id=o, activities=(reply(f"r-{d}", answered[d]),) if d in answered else ())
        for d, o in [(f"e{i}", "o1") for i in range(1, 5)] + [(f"s{i}", "o2") for i in range(1, 5)]
    ]
    store.store_batch("acme", "run1", deals, (), {"after": "x"}, NOW - timedelta(hours=1))
    enforced = [create(f"k-e{i}", f"e{i}", "agreed_interval") for i in range(1, 5)]
    stop = state("k-stop", "e4", "stop", FollowupState.STOPPED, "silence")
    inside = {f"e{i}": "owner" for i in range(1, 5)}
    store.record_actions("acme", "run1", [*enforced, stop], "intent", FOLLOWED_UP, inside)
    store.record_results("acme", [Result(a.key, "applied") for a in [*enforced, stop]], [], FOLLOWED_UP)
    # shadow decisions whose keys the engine no longer makes
    held = [replace(create(f"k-s{i}", f"s{i}", "agreed_interval"), owner_id="o2") for i in range(1, 5)]
    store.record_actions(
        "acme", "run1", held, "shadow", FOLLOWED_UP, {f"s{i}": "outside" for i in range(1, 5)}
    )
    still = evaluate(SOURCE.policy, deals[5], NOW).actions[0]  # s2: what the engine decides for it now
    store.record_actions("acme", "run2", [still], "shadow", NOW - timedelta(days=1), {"s2": "outside"})
    store.record_audit(
        "acme",
        "run1",
        "enforce",
        FOLLOWED_UP,
        [
            AuditEntry(f"e{i}", "agreed_interval", True, "planned", "due", mode="enforce", cohort="owner")
            for i in range(1, 5)
        ]
        + [
            AuditEntry(f"s{i}", "agreed_interval", True, "planned", "due", mode="shadow", cohort="outside")
            for i in range(1, 5)
        ],
    )
    return still.key


def table(page: Page, table_id: str) -> Table:
    for section in page.sections:
        for block in section.blocks:
            found = block if isinstance(block, Table) else block.table
            if found.id == table_id:
                return found
    raise AssertionError(f"no table {table_id}")


def rows(found: Table) -> list[dict[str, str]]:
    keys = [c.name for c in found.columns]
    return [dict(zip(keys, (cell.text for cell in row), strict=True)) for row in found.rows]


def pct(x: float | None) -> str:
    assert x is not None
    return f"{100 * x:,.1f}%"


def test_cohorts_side_by_side(store: StateStore) -> None:
    still_key = fill(store)
    page = build_page(ReportRequest(store, (SOURCE,), NOW - timedelta(days=30), NOW))
    shown = {r["measure"]: r for r in rows(table(page, "table-rollout"))}

    reply_e, reply_s = wilson(2, 4), wilson(1, 4)
    assert reply_e.low == pytest.approx(0.1500, abs=5e-4)
    assert reply_e.high == pytest.approx(0.8500, abs=5e-4)
    reply_row = shown["reply within 7 days of a follow-up"]
    assert (reply_row["enforced"], reply_row["enforced_n"], reply_row["shadow"], reply_row["shadow_n"]) == (
        "50.0%",
        "4",
        "25.0%",
        "4",
    )
    assert reply_row["enforced_interval"] == f"{pct(reply_e.low)} – {pct(reply_e.high)}"
    assert reply_row["shadow_interval"] == f"{pct(reply_s.low)} – {pct(reply_s.high)}"

    days = shown["days to the next customer signal (median)"]
    assert (days["enforced"], days["enforced_n"], days["shadow"], days["shadow_n"]) == (
        "2.0",
        "3",
        "1.0",
        "1",
    )
    wait = median_interval([2, 2, 9])
    assert days["enforced_interval"] == f"{wait.low:,.1f} – {wait.high:,.1f}"

    stops = shown["deals stopped"]
    assert (stops["enforced"], stops["enforced_n"], stops["shadow"], stops["shadow_n"]) == (
        "25.0%",
        "4",
        "0.0%",
        "4",
    )

    rate = shown["tasks per rep per day"]
    enforced_rate, shadow_rate = poisson_rate(4, 30), poisson_rate(5, 30)  # one rep each, over 30 days
    assert rate["enforced"] == f"{4 / 30:,.2f}"
    assert rate["shadow"] == f"{5 / 30:,.2f}"
    assert rate["enforced_interval"] == f"{enforced_rate.low:,.2f} – {enforced_rate.high:,.2f}"
    assert shadow_rate.n == 5

    held = rows(table(page, "table-held"))
    assert [(r["deal_id"], r["cohort"]) for r in held] == [("s2", "outside")]  # the other four no longer hold
    tiles = {t.key: t.value for s in page.sections for t in s.tiles}
    assert (tiles["shadow_would_apply"], tiles["cohort_enforced_deals"], tiles["cohort_shadow_deals"]) == (
        "1",
        "4",
        "4",
    )
    assert {r["rule"]: r["n"] for r in rows(table(page, "table-held-by-rule"))} == {"agreed_interval": "1"}
    assert any(d.deal_id == "s2" for d in page.deals)  # its evidence is on the page
    cohorts = {(r["mode"], r["cohort"]): r["deals"] for r in rows(table(page, "table-cohorts"))}
    assert cohorts == {("enforce", "owner"): "4", ("shadow", "outside"): "4"}
    assert still_key


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        (0, 10, 0.0, 0.2775),  # Wilson at k = 0 is not a zero-width interval
        (10, 10, 0.7225, 1.0),
        (5, 10, 0.2366, 0.7634),
        (1, 100, 0.0018, 0.0545),
    ],
)
def test_wilson_intervals(k: int, n: int, low: float, high: float) -> None:
    found = wilson(k, n)
    assert found.low == pytest.approx(low, abs=1e-4)
    assert found.high == pytest.approx(high, abs=1e-4)
    assert wilson(0, 0).value is None


def test_poisson_and_median_intervals() -> None:
    zero = poisson_rate(0, 10)
    assert (zero.value, zero.low) == (0.0, 0.0)
    assert zero.high == pytest.approx(3.8415 / 10, abs=1e-3)  # z² at x = 0
    hundred = poisson_rate(100, 1)
    assert hundred.low == pytest.approx(82.2, abs=0.1)
    assert hundred.high == pytest.approx(121.6, abs=0.1)
    values = list(range(1, 101))
    middle = median_interval(values)
    assert middle.value == 50.5
    assert (middle.low, middle.high) == (values[math.floor(50 - 9.8) - 1], values[math.ceil(51 + 9.8) - 1])
    assert median_interval([]).value is None


def test_the_cohorts_are_the_same_when_two_processes_read_the_mirror(store: StateStore) -> None:
    """A large mirror is scanned by two processes: what they observe for the cohorts is merged whole."""
    fill(store)

    def shown(parallel_from: int | None) -> tuple[list[dict[str, str]], ...]:
        page = build_page(ReportRequest(store, (SOURCE,), NOW - timedelta(days=30), NOW, 100, parallel_from))
        return tuple(rows(table(page, t)) for t in ("table-rollout", "table-held", "table-held-by-rule"))

    assert shown(2) == shown(None)
