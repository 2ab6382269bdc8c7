"""The rollout section: enforced and shadow cohorts side by side on the same measures, with 95 % intervals,
and the shadow decisions enforcement would apply now.

A decision's cohort is the ledger's: written to the CRM (enforced: an enforcing account, or a deal inside
the policy's ``rollout``) or held in shadow (a shadow account, or a deal outside the rollout). The measures
(docs/report.md, "The rollout"):

* reply rate after a follow-up: of the deals whose first follow-up task of the period was decided at least
  7 days ago, the share with a customer signal within 7 days of it (Wilson interval);
* days to the next customer signal after that follow-up, for those that had one by now (median with a
  distribution-free interval);
* stops: the share of the cohort's deals the policy stopped (Wilson);
* tasks per rep per day: task decisions over the task owners times the days of the period (Poisson score).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from report import charts
from report.cohorts import ENFORCE, MODES, SHADOW, Cohorts, Held, Observed
from report.hygiene import anchor_for
from report.model import Cell, Chart, Column, Figure, Section, Table, Tile, moment, num
from report.sources import ReportRequest
from report.stats import Estimate, median_interval, poisson_rate, wilson

REPLY_WINDOW = timedelta(days=7)
COHORT_LABELS = {ENFORCE: "enforced", SHADOW: "shadow"}
COHORT_COLOURS = {"enforced": charts.BLUE, "shadow": charts.GREY}


@dataclass(frozen=True)
class Measure:
    key: str
    label: str
    unit: str  # "%" for shares (shown as percentages), else the unit's name
    digits: int
    by_mode: dict[str, Estimate]


def measures(request: ReportRequest, cohorts: Cohorts, seen: Observed) -> list[Measure]:
    """The four measures for each cohort, from the ledger's figures and what the mirror scan observed."""
    replied: dict[str, list[bool]] = {m: [] for m in MODES}
    waits: dict[str, list[float]] = {m: [] for m in MODES}
    judged_before = request.now - REPLY_WINDOW
    for (account, deal_id), firsts in cohorts.wanted.followups.items():
        for mode, at in firsts.items():
            key = (account, deal_id, mode)
            if key not in seen.next_signal:
                continue  # the deal left the mirror (closed): its activities are not known
            signal = seen.next_signal[key]
            if signal is not None:
                waits[mode].append((signal - at).total_seconds() / 86400)
            if at <= judged_before:
                replied[mode].append(signal is not None and signal - at <= REPLY_WINDOW)
    days = max((request.now - request.since).total_seconds() / 86400, 1e-9)
    f = cohorts.figures
    return [
        Measure(
            "reply_rate",
            "reply within 7 days of a follow-up",
            "%",
            1,
            {m: wilson(sum(replied[m]), len(replied[m])) for m in MODES},
        ),
        Measure(
            "days_to_signal",
            "days to the next customer signal (median)",
            "days",
            1,
            {m: median_interval(waits[m]) for m in MODES},
        ),
        Measure("stop_rate", "deals stopped", "%", 1, {m: wilson(f[m].stopped, f[m].deals) for m in MODES}),
        Measure(
            "tasks_per_rep_day",
            "tasks per rep per day",
            "tasks",
            2,
            {m: poisson_rate(f[m].tasks, f[m].owners * days) for m in MODES},
        ),
    ]


def section(request: ReportRequest, cohorts: Cohorts, seen: Observed) -> Section:
    found = measures(request, cohorts, seen)
    f = cohorts.figures
    still = len(seen.still)
    tiles = (
        Tile("cohort_enforced_deals", "deals enforced", f"{f[ENFORCE].deals:,}", "decided for in the period"),
        Tile("cohort_shadow_deals", "deals in shadow", f"{f[SHADOW].deals:,}", "decided for in the period"),
        Tile(
            "shadow_would_apply",
            "shadow decisions enforcement would apply now",
            f"{still:,}",
            f"of {cohorts.held_total:,} held",
        ),
    )
    blocks: tuple[Figure | Table, ...] = (
        Figure(_chart(found), _comparison_table(found)),
        _cohort_table(cohorts),
        _held_by_rule_table(seen),
        _held_table(request, seen),
    )
    return Section(
        id="rollout",
        title="Rollout: enforced and shadow cohorts",
        intro=(
            "Every decision crm-followup recorded in the period is in a cohort: enforced (written to the "
            "CRM) or shadow (decided and held: an account in shadow mode, or a deal outside the policy's "
            "rollout). The same measures for both, with 95% intervals (Wilson for shares, a Poisson score "
            "interval for tasks per rep-day, order statistics for the median); n is the number of "
            "follow-ups, deals or tasks behind each."
        ),
        tiles=tiles,
        blocks=blocks,
        notes=(
            "Only a percentage rollout splits deals at random (by a hash of account and deal id); cohorts "
            "by owner, team or pipeline, or an account switched from shadow to enforcing, also differ in "
            "who and when, so read a difference between them as a lead, not as proof.",
        ),
    )


def _value(m: Measure, e: Estimate, which: float | None) -> Cell:
    if which is None:
        return Cell("–", -1)
    return num(100 * which, digits=m.digits, suffix="%") if m.unit == "%" else num(which, digits=m.digits)


def _interval(m: Measure, e: Estimate) -> Cell:
    if e.low is None or e.high is None:
        return Cell("–", -1)
    low, high = (100 * e.low, 100 * e.high) if m.unit == "%" else (e.low, e.high)
    suffix = "%" if m.unit == "%" else ""
    return Cell(f"{low:,.{m.digits}f}{suffix} – {high:,.{m.digits}f}{suffix}", round(low, 6))


def _comparison_table(found: list[Measure]) -> Table:
    columns = [Column("measure"), Column("unit")]
    for mode in MODES:
        label = COHORT_LABELS[mode]
        columns += [
            Column(label, True, f"{label}"),
            Column(f"{label}, 95% interval", True, f"{label}_interval"),
            Column(f"{label}, n", True, f"{label}_n"),
        ]
    rows = []
    for m in found:
        cells: list[Cell] = [Cell(m.label, m.key), Cell(m.unit)]
        for mode in MODES:
            e = m.by_mode[mode]
            cells += [_value(m, e, e.value), _interval(m, e), num(e.n)]
        rows.append(tuple(cells))
    return Table("table-rollout", "Enforced and shadow cohorts on the same measures", tuple(columns), rows)


def _chart(found: list[Measure]) -> Chart | None:
    rows = [
        {
            "measure": f"{m.label} ({COHORT_LABELS[mode]})",
            "cohort": COHORT_LABELS[mode],
            "value": round(100 * e.value, 3),
            "low": round(100 * (e.low or 0), 3),
            "high": round(100 * (e.high or 0), 3),
            "n": e.n,
        }
        for m in found
        if m.unit == "%"
        for mode in MODES
        if (e := m.by_mode[mode]).value is not None
    ]
    if not rows:
        return None
    import altair as alt

    order = [str(r["measure"]) for r in rows]
    scale = charts.colours(list(COHORT_COLOURS), COHORT_COLOURS)
    base = alt.Chart({"values": rows}).encode(
        alt.Y("measure:N", title=None, sort=order),
        color=alt.Color("cohort:N", title=None, scale=scale, legend=alt.Legend(orient="right")),
        tooltip=["measure:N", "value:Q", "low:Q", "high:Q", "n:Q"],
    )
    interval = base.mark_bar(height=4).encode(
        alt.X("low:Q", title="% (with the 95% interval)", scale=alt.Scale(domain=[0, 100])), alt.X2("high:Q")
    )
    point = base.mark_point(filled=True, size=90).encode(alt.X("value:Q"))
    chart = alt.LayerChart(layer=[interval, point]).properties(width=charts.WIDTH, height=34 * len(rows))
    return charts.render(
        chart,
        id="chart-rollout",
        title="Reply rate and stops: enforced and shadow cohorts",
        description=(
            "Shares per cohort with their 95% Wilson intervals: deals with a customer signal within 7 days "
            "of a follow-up, and deals stopped."
        ),
        marks=len(rows),
    )


def _cohort_table(cohorts: Cohorts) -> Table:
    columns = (
        Column("mode"),
        Column("cohort"),
        Column("decisions audited", True, "decisions"),
        Column("deals", True),
    )
    rows = [
        (Cell(r["mode"]), Cell(r["cohort"]), num(r["decisions"]), num(r["deals"]))
        for r in sorted(cohorts.by_cohort, key=lambda r: (r["mode"], -r["decisions"]))
    ]
    return Table(
        "table-cohorts",
        "Decisions by cohort (audit)",
        columns,
        rows,
        note="all: no rollout (the account's mode); owner, team, pipeline, percent: enforced by the rollout; "
        "outside: held in shadow by the rollout.",
    )


def _held_by_rule_table(seen: Observed) -> Table:
    columns = (Column("rule"), Column("action"), Column("would apply now", True, "n"))
    rows = [(Cell(rule), Cell(kind), num(n)) for (rule, kind), n in sorted(seen.still_by.items())]
    return Table("table-held-by-rule", "Shadow decisions enforcement would apply now, by rule", columns, rows)


def held_rows(request: ReportRequest, seen: Observed) -> list[tuple[str, str, Held]]:
    """The held decisions listed (newest first, ``deal_rows`` of them): for the table and the evidence."""

    def newest(row: tuple[str, str, Held]) -> tuple[datetime, str, str, str]:
        return (row[2].at, row[0], row[1], row[2].key)

    return sorted(seen.still, key=newest, reverse=True)[: request.deal_rows]


def _held_table(request: ReportRequest, seen: Observed) -> Table:
    columns = (
        *request.account_column,
        Column("deal id", False, "deal_id"),
        Column("rule"),
        Column("action"),
        Column("held since (UTC)", False, "since"),
        Column("cohort"),
        Column("evidence", False, "evidence"),
    )
    shown = held_rows(request, seen)
    rows = []
    for account, deal_id, held in shown:
        rows.append(
            (
                *request.account_cell(account),
                request.deal_cell(account, deal_id),
                Cell(held.rule),
                Cell(held.kind),
                moment(held.at),
                Cell(held.cohort),
                Cell("verdicts", href="#" + anchor_for(account, deal_id)),
            )
        )
    note = (
        f"{len(seen.still):,} held decisions the engine still makes now; "
        f"showing {len(shown):,}, newest first."
        if seen.still
        else "No held decision that the engine still makes: enforcing now would apply nothing held."
    )
    return Table("table-held", "Shadow decisions enforcement would apply now", columns, rows, note=note)
