"""Operations and enforcement: cycles, their durations and API calls against the daily budget, errors and
rejected records, the age of each cursor, and which accounts enforce and which run in shadow.

Runs are few (one per account and cycle: a month of 15-minute cycles is about 3,000 rows per account), so
they are read as rows; ledger and audit counts are grouped in SQL.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from report import charts
from report.model import Cell, Chart, Column, Figure, Section, Table, Tile, moment
from report.sources import AccountSource, ReportRequest
from report.tables import Field, number, table, text
from store.database import loads
from store.schema import accounts, audit, cursors, ledger, runs

STATUS_COLOURS = {
    "ok": charts.BLUE,
    "retry_later": charts.YELLOW,
    "stopped": charts.SKY,
    "fix_configuration": charts.VERMILION,
    "error": charts.VERMILION,
    "crashed": charts.PURPLE,
    "lease_held": charts.GREY,
    "blocked": charts.ORANGE,
}
NOT_WRITTEN = ("failed", "conflict", "retry_later", "intent")


@dataclass
class AccountOps:
    source: AccountSource
    statuses: Counter[str] = field(default_factory=Counter)
    shadow_cycles: int = 0
    durations: list[float] = field(default_factory=list)
    calls_by_day: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    daily_limit: int | None = None
    problems: list[dict[str, Any]] = field(default_factory=list)
    cursor: dict[str, Any] | None = None
    blocked: str | None = None
    audit_by_mode: Counter[str] = field(default_factory=Counter)
    shadow_actions: int = 0

    @property
    def cycles(self) -> int:
        return sum(self.statuses.values())

    @property
    def calls(self) -> int:
        return sum(self.calls_by_day.values())

    @property
    def budget(self) -> float | None:
        share = self.source.budget_share
        return self.daily_limit * share if self.daily_limit and share else None

    def budget_share(self, calls: int) -> float | None:
        budget = self.budget
        return 100 * calls / budget if budget else None


@dataclass
class Operations:
    accounts: list[AccountOps]
    by_day: Counter[tuple[str, str]]  # (day, status) -> cycles
    not_written: list[dict[str, Any]]


def gather(request: ReportRequest) -> Operations:
    ops = {a.name: AccountOps(a) for a in request.accounts}
    names = list(ops)
    by_day: Counter[tuple[str, str]] = Counter()
    with request.store.engine.connect() as c:
        period = c.execute(
            sa.select(runs)
            .where(
                runs.c.account.in_(names),
                runs.c.started_at >= request.since,
                runs.c.started_at <= request.now,
            )
            .order_by(runs.c.started_at)
        )
        for run in period:
            _add_run(ops[run.account], run, by_day)
        for row in c.execute(sa.select(cursors).where(cursors.c.account.in_(names))):
            ops[row.account].cursor = dict(row._mapping)
        for row in c.execute(sa.select(accounts).where(accounts.c.name.in_(names))):
            ops[row.name].blocked = row.blocked_reason
        mode_counts = c.execute(
            sa.select(audit.c.account, audit.c.mode, sa.func.count())
            .where(audit.c.account.in_(names), audit.c.at >= request.since, audit.c.at <= request.now)
            .group_by(audit.c.account, audit.c.mode)
        )
        for account, mode, n in mode_counts:
            ops[account].audit_by_mode[mode] += n
        in_period = sa.and_(
            ledger.c.account.in_(names),
            ledger.c.created_at >= request.since,
            ledger.c.created_at <= request.now,
        )
        shadow = c.execute(
            sa.select(ledger.c.account, sa.func.count())
            .where(in_period, ledger.c.status == "shadow")
            .group_by(ledger.c.account)
        )
        for account, n in shadow:
            ops[account].shadow_actions = n
        failures = c.execute(
            sa.select(
                ledger.c.account,
                ledger.c.kind,
                ledger.c.status,
                ledger.c.error,
                sa.func.count().label("n"),
                sa.func.max(ledger.c.updated_at).label("last"),
            )
            .where(in_period, ledger.c.status.in_(NOT_WRITTEN))
            .group_by(ledger.c.account, ledger.c.kind, ledger.c.status, ledger.c.error)
            .order_by(sa.func.count().desc())
            .limit(50)
        )
        not_written = [dict(r._mapping) for r in failures]
    return Operations(list(ops.values()), by_day, not_written)


def _add_run(ops: AccountOps, run: Any, by_day: Counter[tuple[str, str]]) -> None:
    day = run.started_at.date().isoformat()
    ops.statuses[run.status] += 1
    ops.shadow_cycles += bool(run.shadow)
    by_day[(day, run.status)] += 1
    if run.finished_at is not None and run.status not in ("lease_held", "running"):
        ops.durations.append((run.finished_at - run.started_at).total_seconds())
    ops.calls_by_day[day] += run.api_calls or 0
    counts = loads(run.counts) or {}
    ops.rejected += int(counts.get("rejected", 0))
    if run.api_daily_limit:
        ops.daily_limit = run.api_daily_limit  # the latest run's (runs come in order)
    if run.status not in ("ok", "lease_held", "running"):
        ops.problems.append(
            {"at": run.started_at, "status": run.status, "error": run.error or "", "run": run.id}
        )


def age(now: datetime, then: datetime | None) -> str:
    if then is None:
        return "never"
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400 * 2:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} days"


def _seconds(now: datetime, then: datetime | None) -> float:
    return (now - then).total_seconds() if then is not None else float("inf")


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


# ---------------------------------------------------------------------------------------------- sections


def operations_section(request: ReportRequest, ops: Operations) -> Section:
    cycles = sum(a.cycles for a in ops.accounts)
    failed = sum(a.cycles - a.statuses["ok"] - a.statuses["lease_held"] for a in ops.accounts)
    calls = sum(a.calls for a in ops.accounts)
    shares = [s for a in ops.accounts if (s := a.budget_share(max(a.calls_by_day.values(), default=0)))]
    oldest = max(
        (_seconds(request.now, (a.cursor or {}).get("updated_at")) for a in ops.accounts), default=0.0
    )
    oldest_text = (
        "never" if oldest == float("inf") else age(request.now, request.now - timedelta(seconds=oldest))
    )
    tiles = (
        Tile("cycles", "cycles", f"{cycles:,}"),
        Tile("cycles_not_ok", "cycles that did not finish ok", f"{failed:,}"),
        Tile("api_calls", "CRM API calls", f"{calls:,}"),
        Tile(
            "busiest_day_budget", "busiest day, share of the budget", f"{max(shares):.1f}%" if shares else "–"
        ),
        Tile("rejected_records", "records rejected", f"{sum(a.rejected for a in ops.accounts):,}"),
        Tile("oldest_cursor", "oldest cursor", oldest_text),
    )
    blocks: list[Figure | Table] = [
        Figure(_cycles_chart(ops), _accounts_table(request, ops)),
    ]
    for account in ops.accounts:
        blocks.append(Figure(_calls_chart(account), _calls_table(account)))
    blocks += [_cursor_table(request, ops), _problems_table(request, ops), _not_written_table(request, ops)]
    return Section(
        id="operations",
        title="Operations",
        intro=(
            "Cycles from the runs table: their outcome, duration and CRM API calls. The daily budget is "
            "the CRM's daily API limit as the connector last knew it (reported by the CRM, else "
            "configured) times the account's daily_budget_share; days are UTC days (HubSpot resets at "
            "midnight in the account's time zone, Salesforce counts a rolling 24 hours)."
        ),
        tiles=tiles,
        blocks=tuple(blocks),
    )


def _cycles_chart(ops: Operations) -> Chart | None:
    statuses = sorted({s for _, s in ops.by_day}, key=lambda s: (s != "ok", s))
    rows = [{"day": d, "status": s, "cycles": n} for (d, s), n in sorted(ops.by_day.items())]
    return charts.drawn(
        rows,
        charts.daily_stacked(rows, charts.Stack("status", statuses, STATUS_COLOURS), ("cycles", "cycles")),
        id="chart-cycles",
        title="Cycles per day",
        description="Worker cycles per day (UTC) by how they ended.",
    )


def _busiest_share(a: AccountOps) -> float | None:
    return a.budget_share(max(a.calls_by_day.values(), default=0))


_ACCOUNT_FIELDS: tuple[Field[AccountOps], ...] = (
    text("account", lambda a: a.source.name),
    text("CRM", lambda a: a.source.crm, key="crm"),
    number("cycles", lambda a: a.cycles),
    number("ok", lambda a: a.statuses["ok"]),
    number("not ok", lambda a: a.cycles - a.statuses["ok"] - a.statuses["lease_held"], key="not_ok"),
    number("median duration (s)", lambda a: _pct(a.durations, 50), key="p50", digits=1),
    number("p95 duration (s)", lambda a: _pct(a.durations, 95), key="p95", digits=1),
    number("max duration (s)", lambda a: max(a.durations, default=None), key="max", digits=1),
    number("API calls", lambda a: a.calls, key="api_calls"),
    number("daily limit", lambda a: a.daily_limit, key="daily_limit"),
    number("budget per day", lambda a: a.budget, key="budget"),
    number("busiest day, % of budget", _busiest_share, key="busiest_share", digits=2, suffix="%"),
    number("rejected records", lambda a: a.rejected, key="rejected"),
)


def _accounts_table(request: ReportRequest, ops: Operations) -> Table:
    return table("table-accounts", "Cycles and API calls by account", _ACCOUNT_FIELDS, ops.accounts)


def _calls_chart(a: AccountOps) -> Chart | None:
    if not a.calls_by_day:
        return None
    rows = [{"day": d, "calls": n} for d, n in sorted(a.calls_by_day.items())]
    by_account = charts.Stack("account", [a.source.name])
    base = charts.daily_stacked(
        [{**r, "account": a.source.name} for r in rows], by_account, ("calls", "API calls")
    )
    budget = a.budget
    chart = charts.with_limit(base, budget, "daily budget") if budget else base
    return charts.render(
        chart,
        id=f"chart-calls-{a.source.name}",
        title=f"API calls per day: {a.source.name}",
        description=(
            f"CRM API calls per day (UTC) by account {a.source.name}"
            + (f"; the dashed line is the daily budget of {budget:,.0f} calls." if budget else ".")
        ),
        marks=len(rows),
    )


def _calls_table(a: AccountOps) -> Table:
    fields: tuple[Field[tuple[str, int]], ...] = (
        text("day", lambda day: day[0]),
        number("API calls", lambda day: day[1], key="calls"),
        number(
            "% of the daily budget", lambda day: a.budget_share(day[1]), key="share", digits=2, suffix="%"
        ),
    )
    caption = f"API calls per day: {a.source.name}"
    return table(f"table-calls-{a.source.name}", caption, fields, sorted(a.calls_by_day.items()))


def _cursor_table(request: ReportRequest, ops: Operations) -> Table:
    fields: tuple[Field[AccountOps], ...] = (
        text("account", lambda a: a.source.name),
        *_when_and_age(request.now, ("cursor moved (UTC)", "updated"), ("cursor age", "age"), "updated_at"),
        *_when_and_age(
            request.now,
            ("last full pull (UTC)", "full_pull"),
            ("full pull age", "full_pull_age"),
            "last_full_pull_at",
        ),
        text("full pull in progress", _full_pull_running, key="full_pull_running"),
        text("blocked on configuration", _blocked, key="blocked"),
    )
    return table("table-cursors", "Cursors", fields, ops.accounts)


def _full_pull_running(a: AccountOps) -> str:
    return "yes" if (a.cursor or {}).get("full_pull_run") else "no"


def _blocked(a: AccountOps) -> str:
    return a.blocked or "no"


def _when_and_age(
    now: datetime, when: tuple[str, str], age_column: tuple[str, str], stamp: str
) -> tuple[Field[AccountOps], Field[AccountOps]]:
    """When the cursor's ``stamp`` last moved (UTC, to the minute; "never") and how long ago, sorting by
    seconds; each column a (label, key)."""

    def then(a: AccountOps) -> datetime | None:
        value: datetime | None = (a.cursor or {}).get(stamp)
        return value

    def shown(a: AccountOps) -> Cell:
        moved = then(a)
        return Cell(moved.strftime("%Y-%m-%d %H:%M") if moved else "never")

    def ago(a: AccountOps) -> Cell:
        moved = then(a)
        return Cell(age(now, moved), int(_seconds(now, moved)) if moved is not None else 10**12)

    return Field(Column(when[0], False, when[1]), shown), Field(
        Column(age_column[0], True, age_column[1]), ago
    )


_PROBLEM_FIELDS: tuple[Field[tuple[str, dict[str, Any]]], ...] = (
    text("account", lambda problem: problem[0]),
    Field(Column("started (UTC)", False, "at"), lambda problem: moment(problem[1]["at"])),
    text("status", lambda problem: problem[1]["status"]),
    text("error", lambda problem: problem[1]["error"]),
    text("run", lambda problem: problem[1]["run"]),
)


def _problems_table(request: ReportRequest, ops: Operations) -> Table:
    problems = sorted(
        ((a.source.name, p) for a in ops.accounts for p in a.problems), key=lambda x: x[1]["at"], reverse=True
    )
    shown = problems[:50]
    note = (
        f"{len(problems):,} cycles did not finish ok; showing the latest {len(shown):,}."
        if problems
        else "Every cycle finished ok."
    )
    return table("table-problems", "Cycles that did not finish ok", _PROBLEM_FIELDS, shown, note=note)


_NOT_WRITTEN_FIELDS: tuple[Field[dict[str, Any]], ...] = (
    text("account", lambda r: r["account"]),
    text("action", lambda r: r["kind"]),
    text("status", lambda r: r["status"]),
    text("error", lambda r: r["error"] or "–"),
    number("actions", lambda r: r["n"], key="n"),
    text("last (UTC)", lambda r: r["last"].strftime("%Y-%m-%d %H:%M") if r["last"] else "–", key="last"),
)


def _not_written_table(request: ReportRequest, ops: Operations) -> Table:
    note = (
        None if ops.not_written else "Every action decided in the period was written (or decided in shadow)."
    )
    return table(
        "table-not-written", "Actions not written to the CRM", _NOT_WRITTEN_FIELDS, ops.not_written, note=note
    )


def _mode(a: AccountOps) -> str:
    return "shadow" if a.source.shadow else "enforce"


_ENFORCEMENT_FIELDS: tuple[Field[AccountOps], ...] = (
    text("account", lambda a: a.source.name),
    text("mode now", _mode),
    number("cycles enforcing", lambda a: a.cycles - a.shadow_cycles, key="enforce_cycles"),
    number("cycles in shadow", lambda a: a.shadow_cycles, key="shadow_cycles"),
    number("decisions audited, enforce", lambda a: a.audit_by_mode["enforce"], key="audit_enforce"),
    number("decisions audited, shadow", lambda a: a.audit_by_mode["shadow"], key="audit_shadow"),
    number("actions decided in shadow", lambda a: a.shadow_actions, key="shadow_actions"),
)


def enforcement_section(request: ReportRequest, ops: Operations) -> Section:
    """Which accounts enforce and which run in shadow, and what each decided in which mode.

    The audit's ``mode`` (enforce | shadow) is each decision's cohort today; a canary rollout that records
    a cohort per decision groups by that column instead, with the same table.
    """
    by_mode: defaultdict[str, list[str]] = defaultdict(list)
    for a in ops.accounts:
        by_mode[_mode(a)].append(a.source.name)
    tiles = (
        Tile(
            "accounts_enforcing",
            "accounts enforcing",
            str(len(by_mode["enforce"])),
            ", ".join(by_mode["enforce"]),
        ),
        Tile(
            "accounts_shadow", "accounts in shadow", str(len(by_mode["shadow"])), ", ".join(by_mode["shadow"])
        ),
    )
    return Section(
        id="enforcement",
        title="Enforcement",
        intro=(
            "Enforcement is set per account (the account's shadow setting or the policy's mode): in shadow "
            "mode crm-followup decides, audits and records its actions, and writes nothing to the CRM."
        ),
        tiles=tiles,
        blocks=(table("table-enforcement", "Enforcement by account", _ENFORCEMENT_FIELDS, ops.accounts),),
    )
