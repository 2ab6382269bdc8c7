"""What the policy did in the period, by rule: from the ledger (every action and its outcome) and the audit.

Aggregated in SQL (one ``GROUP BY`` per measure); only the created tasks are read row by row, because
their fate needs two lookups SQL cannot make: the key of the action that closed a task is a hash of the
task's key (``make_key("close", key)``), and whether a rep completed it is the task's state in the mirror.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import altair as alt
import sqlalchemy as sa

from policies.model import make_key
from report import charts
from report.hygiene import MirrorScan, anchor_for
from report.model import Cell, Chart, Column, Figure, Section, Table, Tile, moment, num
from report.sources import ReportRequest
from report.sql import json_text, utc_day
from store.schema import audit, ledger

FATES = (
    "open",
    "done by the rep",
    "settled",
    "superseded",
    "expired",
    "closed with the deal",
    "left the mirror",
)
FATE_COLOURS = {
    "open": charts.SKY,
    "done by the rep": charts.GREEN,
    "settled": charts.BLUE,
    "superseded": charts.YELLOW,
    "expired": charts.ORANGE,
    "closed with the deal": charts.PURPLE,
    "left the mirror": charts.GREY,
}
_CLOSE_REASON_FATE = {
    "settled": "settled",
    "superseded": "superseded",
    "expired": "expired",
    "deal_stopped": "closed with the deal",
}
OUTCOMES = ("stopped", "nurtured", "reactivated", "reopened")
OUTCOME_COLOURS = {
    "stopped": charts.VERMILION,
    "nurtured": charts.PURPLE,
    "reactivated": charts.GREEN,
    "reopened": charts.SKY,
}
WRITTEN = "applied"
SHADOW = "shadow"


@dataclass
class Activity:
    actions: list[dict[str, Any]] = field(default_factory=list)  # day, rule, kind, status, n
    fates: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))  # rule -> fate
    created: Counter[str] = field(default_factory=Counter)  # rule -> tasks written
    shadow_tasks: Counter[str] = field(default_factory=Counter)  # rule -> tasks decided in shadow
    outcomes: list[dict[str, Any]] = field(default_factory=list)  # day, outcome, reason, status, n
    stops: list[dict[str, Any]] = field(default_factory=list)  # the latest state changes, for a list
    deferred: list[dict[str, Any]] = field(default_factory=list)  # day, rule, n


def gather(request: ReportRequest, found: MirrorScan) -> Activity:
    names = [a.name for a in request.accounts]
    dialect = request.dialect
    in_period = sa.and_(
        ledger.c.account.in_(names), ledger.c.created_at >= request.since, ledger.c.created_at <= request.now
    )
    result = Activity()
    with request.store.engine.connect() as c:
        day = utc_day(ledger.c.created_at, dialect).label("day")
        query = (
            sa.select(day, ledger.c.rule_id, ledger.c.kind, ledger.c.status, sa.func.count().label("n"))
            .where(in_period)
            .group_by(day, ledger.c.rule_id, ledger.c.kind, ledger.c.status)
        )
        result.actions = [dict(r._mapping) for r in c.execute(query)]
        _task_fates(c, request, found, result, in_period)
        _outcomes(c, request, result, in_period)
        audit_day = utc_day(audit.c.at, dialect).label("day")
        deferred = (
            sa.select(audit_day, audit.c.rule_id.label("rule"), sa.func.count().label("n"))
            .where(
                audit.c.account.in_(names),
                audit.c.at >= request.since,
                audit.c.at <= request.now,
                audit.c.outcome == "deferred",
            )
            .group_by(audit_day, audit.c.rule_id)
        )
        result.deferred = [dict(r._mapping) for r in c.execute(deferred)]
    return result


def _task_fates(
    c: sa.Connection, request: ReportRequest, found: MirrorScan, result: Activity, in_period: Any
) -> None:
    reason = json_text(ledger.c.action, request.dialect, "reason").label("reason")
    closes = c.execute(
        sa.select(ledger.c.account, ledger.c.key, reason).where(
            ledger.c.account.in_([a.name for a in request.accounts]),
            ledger.c.created_at >= request.since,
            ledger.c.kind == "close_task",
            ledger.c.status == WRITTEN,
        )
    )
    closed = {(account, key): str(why) for account, key, why in closes}
    created = c.execution_options(yield_per=5000).execute(
        sa.select(ledger.c.account, ledger.c.key, ledger.c.rule_id, ledger.c.status).where(
            in_period, ledger.c.kind == "create_task", ledger.c.status.in_((WRITTEN, SHADOW))
        )
    )
    for account, key, rule, status in created:
        if status == SHADOW:
            result.shadow_tasks[rule] += 1
            continue
        result.created[rule] += 1
        why = closed.get((account, make_key("close", key)))
        if why is not None:
            fate = _CLOSE_REASON_FATE.get(why, why)
        else:
            state = found.task_open.get((account, key))
            fate = "left the mirror" if state is None else "open" if state else "done by the rep"
        result.fates[rule][fate] += 1


def _outcomes(c: sa.Connection, request: ReportRequest, result: Activity, in_period: Any) -> None:
    """Deals stopped, nurtured, reactivated or reopened: the follow-up state crm-followup wrote."""
    dialect = request.dialect
    state = json_text(ledger.c.action, dialect, "fields", "followup_state").label("state")
    why = json_text(ledger.c.action, dialect, "fields", "followup_reason").label("reason")
    day = utc_day(ledger.c.created_at, dialect).label("day")
    changes = sa.and_(
        in_period,
        ledger.c.kind == "set_deal_fields",
        ledger.c.status.in_((WRITTEN, SHADOW)),
        state.is_not(None),
    )
    grouped = c.execute(
        sa.select(day, ledger.c.rule_id, state, why, ledger.c.status, sa.func.count().label("n"))
        .where(changes)
        .group_by(day, ledger.c.rule_id, state, why, ledger.c.status)
    )
    for row in grouped:
        outcome = _outcome(row.state, row.rule_id)
        if outcome is not None:
            result.outcomes.append(
                {
                    "day": row.day,
                    "outcome": outcome,
                    "reason": row.reason or "",
                    "status": row.status,
                    "n": row.n,
                }
            )
    latest = c.execute(
        sa.select(
            ledger.c.account,
            ledger.c.deal_id,
            ledger.c.created_at,
            ledger.c.rule_id,
            state,
            why,
            ledger.c.status,
        )
        .where(changes)
        .order_by(ledger.c.created_at.desc(), ledger.c.key)
        .limit(request.deal_rows)
    )
    result.stops = [
        {**dict(r._mapping), "outcome": _outcome(r.state, r.rule_id)}
        for r in latest
        if _outcome(r.state, r.rule_id) is not None
    ]


def _outcome(state: str | None, rule: str) -> str | None:
    if state == "stopped":
        return "stopped"
    if state == "nurture":
        return "nurtured"
    if state == "active":
        return "reactivated" if rule == "nurture" else "reopened"
    return None


# ---------------------------------------------------------------------------------------------- section


def section(request: ReportRequest, found: Activity) -> Section:
    totals = Counter[str]()
    for row in found.outcomes:
        if row["status"] == WRITTEN:
            totals[row["outcome"]] += row["n"]
    done = sum(f["done by the rep"] for f in found.fates.values())
    created = sum(found.created.values())
    deferred = sum(r["n"] for r in found.deferred)
    tiles = (
        Tile("tasks_created", "tasks created", f"{created:,}", "written to the CRM"),
        Tile("tasks_done_by_reps", "done by reps", f"{done:,}", _share(done, created)),
        Tile("deals_stopped", "deals stopped", f"{totals['stopped']:,}"),
        Tile("deals_nurtured", "sent to nurture", f"{totals['nurtured']:,}"),
        Tile("deals_reactivated", "back from nurture", f"{totals['reactivated']:,}"),
        Tile("actions_deferred", "held back by budgets", f"{deferred:,}", "decisions deferred"),
    )
    blocks = (
        Figure(_actions_chart(found), _actions_table(found)),
        Figure(_fates_chart(found), _fates_table(found)),
        Figure(_outcomes_chart(found), _outcomes_table(found)),
        _stops_table(request, found),
        Figure(_deferred_chart(found), _deferred_table(found)),
    )
    return Section(
        id="policy",
        title="What the policy did",
        intro=(
            "Every action crm-followup decided in the period, from the action ledger: written to the CRM "
            "(applied), decided in shadow mode (never written), or not written (failed, conflict, retry "
            "later). The fate of each task it created comes from the ledger (closed by crm-followup, and "
            "why) and the mirror (still open, or completed in the CRM by the rep)."
        ),
        tiles=tiles,
        blocks=blocks,
    )


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else ""


def _by_status(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[tuple[Any, ...], Counter[str]]:
    out: dict[tuple[Any, ...], Counter[str]] = defaultdict(Counter)
    for row in rows:
        status = row["status"] if row["status"] in (WRITTEN, SHADOW) else "not written"
        out[tuple(row[k] for k in keys)][status] += row["n"]
    return out


def _actions_chart(found: Activity) -> Chart | None:
    per: Counter[tuple[str, str]] = Counter()
    for row in found.actions:
        per[(row["day"], row["rule_id"])] += row["n"]
    return charts.drawn(
        *_per_day_by_rule(per, ("actions", "actions")),
        id="chart-actions",
        title="Actions per day by rule",
        description="Actions crm-followup decided per day (UTC), by the rule that fired, whatever their "
        "outcome.",
    )


def _per_day_by_rule(
    per: Counter[tuple[str, str]], value: charts.Field
) -> tuple[list[dict[str, Any]], alt.Chart]:
    """The rows and bars of a chart of counts per (day, rule), stacked by rule."""
    rows = [{"day": d, "rule": r, value[0]: n} for (d, r), n in sorted(per.items())]
    return rows, charts.daily_stacked(rows, charts.Stack("rule", sorted({rule for _, rule in per})), value)


def _actions_table(found: Activity) -> Table:
    grouped = _by_status(found.actions, ("day", "rule_id", "kind"))
    columns = (
        Column("day"),
        Column("rule"),
        Column("action"),
        Column("applied", True),
        Column("shadow", True),
        Column("not written", True, "not_written"),
    )
    rows = [
        (Cell(d), Cell(r), Cell(k), num(n[WRITTEN]), num(n[SHADOW]), num(n["not written"]))
        for (d, r, k), n in sorted(grouped.items())
    ]
    return Table("table-actions", "Actions per day by rule", columns, rows)


def _fates_chart(found: Activity) -> Chart | None:
    rows = [
        {"rule": rule, "fate": fate, "tasks": n}
        for rule, fates in sorted(found.fates.items())
        for fate in FATES
        if (n := fates[fate])
    ]
    by_fate = charts.Stack("fate", FATES, FATE_COLOURS)
    return charts.drawn(
        rows,
        charts.stacked_bars(rows, ("rule", "rule"), by_fate, ("tasks", "tasks created in the period")),
        id="chart-task-fates",
        title="What became of the tasks, by rule",
        description="Tasks crm-followup created in the period, by rule: still open, completed by the rep, or "
        "closed by crm-followup as settled, superseded, expired or with the deal.",
    )


def _fates_table(found: Activity) -> Table:
    columns = (
        Column("rule"),
        Column("tasks created", True, "created"),
        *(Column(f, True, f.replace(" ", "_")) for f in FATES),
        Column("decided in shadow", True, "shadow"),
    )
    rules = sorted(set(found.created) | set(found.shadow_tasks))
    rows = [
        (
            Cell(rule),
            num(found.created[rule]),
            *(num(found.fates[rule][f]) for f in FATES),
            num(found.shadow_tasks[rule]),
        )
        for rule in rules
    ]
    return Table("table-task-fates", "What became of the tasks, by rule", columns, rows)


def _outcomes_chart(found: Activity) -> Chart | None:
    per: Counter[tuple[str, str]] = Counter()
    for row in found.outcomes:
        per[(row["day"], row["outcome"])] += row["n"]
    rows = [{"day": d, "outcome": o, "deals": n} for (d, o), n in sorted(per.items())]
    return charts.drawn(
        rows,
        charts.daily_stacked(rows, charts.Stack("outcome", OUTCOMES, OUTCOME_COLOURS), ("deals", "deals")),
        id="chart-outcomes",
        title="Stops, nurture and reactivations per day",
        description="Deals crm-followup stopped, sent to nurture, reactivated from nurture, or saw reopened, "
        "per day.",
    )


def _outcomes_table(found: Activity) -> Table:
    grouped = _by_status(found.outcomes, ("outcome", "reason"))
    columns = (
        Column("outcome"),
        Column("reason"),
        Column("applied", True),
        Column("shadow", True),
        Column("not written", True, "not_written"),
    )
    order = {o: i for i, o in enumerate(OUTCOMES)}
    rows = [
        (Cell(o, order[o]), Cell(r or "–"), num(n[WRITTEN]), num(n[SHADOW]), num(n["not written"]))
        for (o, r), n in sorted(grouped.items(), key=lambda kv: (order[kv[0][0]], -sum(kv[1].values())))
    ]
    return Table("table-outcomes", "Stops, nurture and reactivations, with reasons", columns, rows)


def _stops_table(request: ReportRequest, found: Activity) -> Table:
    columns = (
        *request.account_column,
        Column("deal id", False, "deal_id"),
        Column("when (UTC)", False, "when"),
        Column("outcome"),
        Column("rule"),
        Column("reason"),
        Column("status"),
        Column("evidence", False, "evidence"),
    )
    rows = []
    for r in found.stops:
        rows.append(
            (
                *request.account_cell(r["account"]),
                request.deal_cell(r["account"], r["deal_id"]),
                moment(r["created_at"]),
                Cell(r["outcome"]),
                Cell(r["rule_id"]),
                Cell(r["reason"] or "–"),
                Cell(r["status"]),
                Cell("verdicts", href="#" + anchor_for(r["account"], r["deal_id"])),
            )
        )
    note = f"The latest {len(rows):,} state changes." if rows else "No deal changed state in the period."
    return Table(
        "table-list-state-changes", "Deals stopped, nurtured or reactivated", columns, rows, note=note
    )


def _deferred_chart(found: Activity) -> Chart | None:
    per = Counter({(r["day"], r["rule"]): r["n"] for r in found.deferred})
    return charts.drawn(
        *_per_day_by_rule(per, ("deferred", "decisions deferred")),
        id="chart-deferred",
        title="Held back by budgets",
        description="Decisions held back per day by the budgets (tasks per owner per day, touches per "
        "contact per week), by rule.",
    )


def _day_rule(row: Mapping[str, Any]) -> tuple[str, str]:
    return (row["day"], row["rule"])


def _deferred_table(found: Activity) -> Table:
    rows = [(Cell(r["day"]), Cell(r["rule"]), num(r["n"])) for r in sorted(found.deferred, key=_day_rule)]
    columns = (Column("day"), Column("rule"), Column("deferred", True))
    return Table("table-deferred", "Held back by budgets", columns, rows)
