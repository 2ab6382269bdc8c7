"""``followup report --backtest FILE.json``: the backtest's results (docs/backtest.md) as a report page.

The same page as the live report (``report.model`` sections, the same template, charts and sortable
tables), built from the JSON ``followup backtest --json`` writes (``docs/backtest.schema.json``; the command
validates the file against it first). Sections: the variants side by side (stops judged by what happened
next: false kills, true stops), the false kills themselves, busy work per owner and day, next-step
completeness over time, agreed-follow-up compliance (no policy involved) and the API calls enforcing each
variant would cost. Every figure is one of the JSON's, shown as it is there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import altair as alt

from policies.backtest import history_notes
from report import charts
from report.model import Cell, Column, Figure, Page, Section, Table, Tile, num

STOP_OUTCOMES = ("won", "moved forward", "lost", "reactivated", "unresolved")
STOP_COLOURS = {
    "won": charts.VERMILION,
    "moved forward": charts.ORANGE,
    "lost": charts.BLUE,
    "reactivated": charts.GREEN,
    "unresolved": charts.GREY,
}
VERDICTS = ("early", "on_time", "late", "customer_first", "never", "pending")
VERDICT_LABELS = {
    "early": "early",
    "on_time": "on time",
    "late": "late",
    "customer_first": "customer first",
    "never": "never",
    "pending": "pending",
}
VERDICT_COLOURS = {
    "early": charts.YELLOW,
    "on time": charts.GREEN,
    "late": charts.ORANGE,
    "customer first": charts.SKY,
    "never": charts.VERMILION,
    "pending": charts.GREY,
}

Report = Mapping[str, Any]


def build_backtest_page(report: Report, *, source: str, title: str = "crm-followup backtest") -> Page:
    """The page for one backtest report (already validated against its schema)."""
    period, snapshot = report["period"], report["snapshot"]
    variants: Sequence[Mapping[str, Any]] = report["variants"]
    sections = (
        _variants_section(report, variants),
        _false_kills_section(variants),
        _busy_work_section(variants),
        _completeness_section(variants),
        _compliance_section(report["compliance"]),
        _api_section(variants),
    )
    start = datetime.fromisoformat(period["from"]).replace(tzinfo=UTC)
    end = datetime.fromisoformat(period["to"]).replace(tzinfo=UTC)
    subtitle = (
        f"{snapshot['deals']:,} deals ({snapshot['deals_with_history']:,} with history) and "
        f"{snapshot['owners']:,} owners of a {snapshot['crm']} snapshot taken {snapshot['taken_at'] or '?'}; "
        f"a simulated cycle every {period['step_minutes']} min in {period['time_zone']}; from {source}"
    )
    return Page(
        title=title,
        generated_at=datetime.now(UTC),
        since=start,
        now=end,
        accounts=(),
        sections=sections,
        deals=(),
        meta={"subtitle": subtitle, "evidence": False},
    )


# ---------------------------------------------------------------------------------------------- variants


def _stop_rows(variants: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for v in variants:
        stops = v["account"]["stops"]
        counts = {
            "won": stops["false_kills_won"],
            "moved forward": stops["false_kills"] - stops["false_kills_won"],
            "lost": stops["true_stops"],
            "reactivated": stops["reactivated"],
            "unresolved": stops["unresolved"],
        }
        rows += [{"variant": v["name"], "outcome": o, "stops": n} for o, n in counts.items() if n]
    return rows


def _variants_section(report: Report, variants: Sequence[Mapping[str, Any]]) -> Section:
    first = variants[0]["account"]
    name = variants[0]["name"] if len(variants) > 1 else ""
    agreements = report["compliance"]["account"]["agreements"]
    tiles = (
        Tile("variants", "variants", f"{len(variants):,}"),
        Tile("false_kills", "false kills", f"{first['stops']['false_kills']:,}", name),
        Tile("true_stops", "true stops", f"{first['stops']['true_stops']:,}", name),
        Tile("tasks_created", "tasks created", f"{first['busy_work']['tasks_created']:,}", name),
        Tile("agreements", "agreed follow-ups (no policy)", f"{agreements:,}"),
    )
    rows = _stop_rows(variants)
    stops = ("stops", "deals stopped or nurtured, by what happened next")
    by_outcome = charts.Stack("outcome", STOP_OUTCOMES, STOP_COLOURS)
    chart = charts.drawn(
        rows,
        charts.stacked_bars(rows, ("variant", ""), by_outcome, stops, [v["name"] for v in variants]),
        id="chart-backtest-stops",
        title="What happened after each stop, by variant",
        description="Deals each variant would have stopped or sent to nurture, by what the history shows "
        "next: won or moved forward (false kills), lost anyway (true stops), reactivated, unresolved.",
    )
    columns = (
        Column("variant"),
        Column("stopped", True),
        Column("nurtured", True),
        Column("false kills", True, "false_kills"),
        Column("of them won", True, "false_kills_won"),
        Column("false kill amount", True, "false_kill_amount"),
        Column("true stops", True, "true_stops"),
        Column("days saved", True, "days_saved"),
        Column("reactivated", True),
        Column("unresolved", True),
        Column("tasks created", True, "tasks_created"),
        *_spread_columns("tasks per rep per working day (mean)", "tasks"),
        Column("days at cap", True, "days_at_cap"),
        Column("deferred", True),
        Column("expired", True),
        Column("next step complete", True, "next_step_completeness"),
        Column("settings"),
    )
    table_rows = []
    for v in variants:
        stops, busy = v["account"]["stops"], v["account"]["busy_work"]
        spread = busy["per_working_day"]
        table_rows.append(
            (
                Cell(v["name"]),
                num(stops["stopped"]),
                num(stops["nurtured"]),
                num(stops["false_kills"]),
                num(stops["false_kills_won"]),
                num(stops["false_kill_amount"]),
                num(stops["true_stops"]),
                num(stops["days_saved"], digits=1),
                num(stops["reactivated"]),
                num(stops["unresolved"]),
                num(busy["tasks_created"]),
                *_spread_cells(spread),
                num(busy["days_at_cap"]),
                num(busy["deferred"]),
                num(busy["expired"]),
                _share(v["account"]["next_step_completeness"]),
                Cell(_settings(v)),
            )
        )
    notes = history_notes(report["history"])
    notes += [
        f"{v['name']}: overrides that set the swept key keep their own value: {', '.join(v['shadowed_by'])}"
        for v in variants
        if v["shadowed_by"]
    ]
    return Section(
        id="variants",
        title="Policy variants side by side",
        intro=(
            "What each policy variant would have done over the period, replayed over the CRM's history with "
            "the real engine. A stop is judged by what the history shows after it: a deal won or moved to a "
            "later stage is a false kill, one lost anyway a true stop (days saved: from the stop to the real "
            "loss)."
        ),
        tiles=tiles,
        blocks=(Figure(chart, Table("table-variants", "Variants side by side", columns, table_rows)),),
        notes=tuple(notes),
    )


def _settings(variant: Mapping[str, Any]) -> str:
    values = ", ".join(f"{k}={v}" for k, v in variant["settings"].items())
    return f"{variant['policy']}" + (f" ({values})" if values else "")


def _spread_columns(mean_label: str, key: str = "") -> tuple[Column, ...]:
    """A spread's columns: the mean (``mean_label``), the 95th percentile and the maximum; ``key`` (e.g.
    ``late``) prefixes their data-keys (``late_mean``, ``late_p95``, ``late_max``)."""
    prefix = f"{key}_" if key else ""
    return (
        Column(mean_label, True, f"{prefix}mean"),
        Column("p95", True, f"{prefix}p95"),
        Column("max", True, f"{prefix}max"),
    )


def _spread_cells(spread: Mapping[str, float | None], mean_digits: int = 2) -> tuple[Cell, ...]:
    """A spread's cells under ``_spread_columns``: the mean to ``mean_digits``, the p95 and maximum to one."""
    return (
        num(spread["mean"], digits=mean_digits),
        num(spread["p95"], digits=1),
        num(spread["max"], digits=1),
    )


def _share(value: float | None) -> Cell:
    return num(None if value is None else 100 * value, digits=1, suffix="%")


# ---------------------------------------------------------------------------------------------- false kills


def _false_kills_section(variants: Sequence[Mapping[str, Any]]) -> Section:
    columns = (
        Column("variant"),
        Column("deal id", False, "deal_id"),
        Column("deal"),
        Column("owner"),
        Column("stopped on", False, "stopped_on"),
        Column("kind"),
        Column("rule"),
        Column("amount", True),
        Column("why"),
        Column("then", False, "outcome"),
        Column("on", False, "outcome_on"),
        Column("after the stop", False, "after"),
    )
    rows = []
    total = 0
    for v in variants:
        for stop in sorted(v["false_kills"], key=lambda s: (-(s["amount"] or 0), s["stopped_at"])):
            total += 1
            evidence = "; ".join(f"{e['label']}: {e['value']}" for e in stop["evidence"])
            after = "; ".join(f"{e['label']}: {e['value']}" for e in stop["after_the_stop"])
            rows.append(
                (
                    Cell(v["name"]),
                    Cell(stop["deal_id"]),
                    Cell(stop["deal_name"]),
                    Cell(stop["owner_id"] or "–"),
                    Cell(stop["stopped_on"]),
                    Cell(stop["kind"]),
                    Cell(stop["rule"]),
                    num(stop["amount"]),
                    Cell(f"{stop['summary']} ({evidence})" if evidence else stop["summary"]),
                    Cell(stop["outcome"].replace("_", " ")),
                    Cell(stop["outcome_on"] or "–"),
                    Cell(after or "–"),
                )
            )
    by_variant = [{"variant": v["name"], "false kills": len(v["false_kills"])} for v in variants]
    chart = None
    if total:
        chart = charts.render(
            charts.bars(
                by_variant,
                ("variant", ""),
                ("false kills", "false kills"),
                charts.VERMILION,
                [v["name"] for v in variants],
            ),
            id="chart-backtest-false-kills",
            title="False kills by variant",
            description=(
                "Deals each variant would have stopped or nurtured that were won or moved forward later."
            ),
            marks=len(by_variant),
        )
    table = Table(
        "table-false-kills",
        "False kills: deals stopped that were won or moved forward later",
        columns,
        rows,
        note=f"{total:,} false kills in all variants, largest amount first." if total else "No false kills.",
    )
    return Section(
        id="false-kills",
        title="False kills",
        intro=(
            "Every deal a variant would have stopped or nurtured although the history shows it was won or "
            "moved to a later stage afterwards, with the engine's reason and evidence at the stop and what "
            "happened next."
        ),
        blocks=(Figure(chart, table),),
    )


# ---------------------------------------------------------------------------------------------- busy work


def _busy_work_section(variants: Sequence[Mapping[str, Any]]) -> Section:
    daily = [
        {"day": d["date"], "variant": v["name"], "tasks": d["tasks_created"]}
        for v in variants
        for d in v["daily"]
        if d["tasks_created"]
    ]
    names = [v["name"] for v in variants]
    chart = None
    if daily:
        chart = charts.render(
            charts.daily_stacked(daily, charts.Stack("variant", names), ("tasks", "tasks created"))
            if len(variants) == 1
            else _points_and_lines(daily, names, x="day", y="tasks", y_title="tasks created", y_max=None),
            id="chart-backtest-tasks",
            title="Tasks created per day",
            description="Tasks each variant would have created per day of the period.",
            marks=len(daily),
        )
    columns = (
        Column("variant"),
        Column("owner"),
        Column("tasks created", True, "tasks_created"),
        Column("working days", True, "working_days"),
        *_spread_columns("per working day (mean)"),
        Column("days at cap", True, "days_at_cap"),
        Column("deferred", True),
        Column("expired", True),
        Column("false kills", True, "false_kills"),
        Column("true stops", True, "true_stops"),
        Column("next step complete", True, "next_step_completeness"),
    )
    rows = []
    for v in variants:
        for group, figures in (("(account)", v["account"]), *sorted(v["owners"].items())):
            busy, stops = figures["busy_work"], figures["stops"]
            spread = busy["per_working_day"]
            rows.append(
                (
                    Cell(v["name"]),
                    Cell(group),
                    num(busy["tasks_created"]),
                    num(busy["working_days"]),
                    *_spread_cells(spread),
                    num(busy["days_at_cap"]),
                    num(busy["deferred"]),
                    num(busy["expired"]),
                    num(stops["false_kills"]),
                    num(stops["true_stops"]),
                    _share(figures["next_step_completeness"]),
                )
            )
    by_rule = Table(
        "table-backtest-by-rule",
        "New tasks by rule",
        (Column("variant"), Column("rule"), Column("tasks", True)),
        [
            (Cell(v["name"]), Cell(rule), num(n))
            for v in variants
            for rule, n in sorted(v["account"]["busy_work"]["by_rule"].items())
        ],
    )
    daily_table = _dated_table(
        "table-backtest-daily",
        "Per day: tasks, stops, nurture",
        variants,
        ("daily", "day"),
        (
            (Column("tasks created", True, "tasks_created"), num),
            (Column("stopped", True), num),
            (Column("nurtured", True), num),
        ),
        skip_empty=True,
    )
    return Section(
        id="busy-work",
        title="Busy work",
        intro=(
            "The work each variant would have handed out: tasks per owner per working day of the owner's "
            "calendar (mean, 95th percentile, maximum), days at the daily cap, tasks a budget deferred "
            "(created later, never dropped) and tasks that expired because nobody acted on them."
        ),
        blocks=(
            Figure(chart, Table("table-busy-work", "Busy work per owner", columns, rows)),
            by_rule,
            daily_table,
        ),
    )


def _dated_table(
    id: str,
    caption: str,
    variants: Sequence[Mapping[str, Any]],
    series: tuple[str, str],
    measures: Sequence[tuple[Column, Callable[[Any], Cell]]],
    *,
    skip_empty: bool = False,
) -> Table:
    """One row per variant and entry of its dated ``series`` (the report's key, the date column's label).

    Each measure is a column and how to show the entry's value under the column's name; ``skip_empty``
    leaves out the entries where every measure is zero.
    """
    key, date_label = series
    columns = (Column("variant"), Column(date_label), *(column for column, _ in measures))
    rows = [
        (Cell(v["name"]), Cell(e["date"]), *(cell(e[column.name]) for column, cell in measures))
        for v in variants
        for e in v[key]
        if not skip_empty or any(e[column.name] for column, _ in measures)
    ]
    return Table(id, caption, columns, rows)


def _points_and_lines(
    rows: Sequence[Mapping[str, Any]],
    names: Sequence[str],
    *,
    x: str,
    y: str,
    y_title: str,
    y_max: float | None,
) -> alt.LayerChart:
    """One point per row, joined by a line per variant (the points come first: they are the data marks)."""
    scale = alt.Scale(domain=[0, y_max]) if y_max is not None else alt.Undefined
    base = alt.Chart({"values": [dict(r) for r in rows]}).encode(
        alt.X(f"{x}:T", title=x),
        alt.Y(f"{y}:Q", title=y_title, scale=scale),
        color=alt.Color(
            "variant:N", title=None, scale=charts.colours(names), legend=alt.Legend(orient="right")
        ),
        tooltip=[f"{x}:T", "variant:N", f"{y}:Q"],
    )
    return alt.LayerChart(
        layer=[base.mark_point(filled=True, size=18), base.mark_line(strokeWidth=1, opacity=0.7)]
    ).properties(width=charts.WIDTH, height=220)


# ---------------------------------------------------------------------------------------------- completeness


def _completeness_section(variants: Sequence[Mapping[str, Any]]) -> Section:
    rows = [
        {"week": w["date"], "variant": v["name"], "share": round(100 * w["share"], 2)}
        for v in variants
        for w in v["next_step_completeness"]
        if w["share"] is not None
    ]
    names = [v["name"] for v in variants]
    y_title = "% of open deals with a complete next step"
    chart = charts.drawn(
        rows,
        _points_and_lines(rows, names, x="week", y="share", y_title=y_title, y_max=100),
        id="chart-backtest-completeness",
        title="Next-step completeness per week",
        description="The weekly share of open deals whose next step is complete by each variant's rule.",
    )
    table = _dated_table(
        "table-backtest-completeness",
        "Next-step completeness per week",
        variants,
        ("next_step_completeness", "week of"),
        (
            (Column("open deals", True, "open_deals"), num),
            (Column("complete", True), num),
            (Column("share", True), _share),
        ),
    )
    return Section(
        id="completeness",
        title="Next-step completeness",
        intro=(
            "Each week, the share of open deals whose next step is complete (a specific what, a why, a date "
            "not passed) by the variant's own rule, as the reps kept them: what the next-step rule would "
            "have had to fix."
        ),
        blocks=(Figure(chart, table),),
    )


# ---------------------------------------------------------------------------------------------- compliance


def _compliance_section(compliance: Mapping[str, Any]) -> Section:
    groups: list[tuple[str, str, Mapping[str, Any]]] = [("account", "(account)", compliance["account"])]
    groups += [("owner", name, c) for name, c in sorted(compliance["owners"].items())]
    groups += [("team", name, c) for name, c in sorted(compliance["teams"].items())]
    order = [VERDICT_LABELS[v] for v in VERDICTS]
    rows = [
        {"owner": name, "verdict": VERDICT_LABELS[v], "agreements": c[v]}
        for kind, name, c in groups
        if kind == "owner"
        for v in VERDICTS
        if c[v]
    ]
    by_verdict = charts.Stack("verdict", order, VERDICT_COLOURS)
    chart = charts.drawn(
        rows,
        charts.stacked_bars(rows, ("owner", "owner"), by_verdict, ("agreements", "agreed follow-ups")),
        id="chart-backtest-compliance",
        title="Agreed follow-ups by owner",
        description="Conversations after which the customer agreed a follow-up interval, by whether the "
        "follow-up came early, on time, late, never, after the customer got in touch first, or is still "
        "pending.",
    )
    columns = (
        Column("group"),
        Column("name"),
        Column("agreements", True),
        *(Column(VERDICT_LABELS[v], True, v) for v in VERDICTS),
        Column("on time, share", True, "on_time_share"),
        *_spread_columns("business days late (mean)", "late"),
    )
    table_rows = []
    for kind, name, c in groups:
        judged = c["early"] + c["on_time"] + c["late"] + c["never"]
        late = c["business_days_late"]
        table_rows.append(
            (
                Cell(kind),
                Cell(name),
                num(c["agreements"]),
                *(num(c[v]) for v in VERDICTS),
                num(100 * c["on_time"] / judged if judged else None, digits=1, suffix="%"),
                *_spread_cells(late, mean_digits=1),
            )
        )
    account = compliance["account"]
    tiles = tuple(
        Tile(f"compliance_{v}", VERDICT_LABELS[v], f"{account[v]:,}") for v in ("on_time", "late", "never")
    )
    return Section(
        id="compliance",
        title="Agreed-follow-up compliance (no policy)",
        intro=(
            "How well the team kept the follow-ups it agreed with customers, with no policy involved: after "
            "a conversation with an agreed interval the next call, e-mail or meeting is on time within "
            f"{compliance['tolerance_business_days']} business day(s) of the due day. The share on time is "
            "of those judged (early, on time, late, never)."
        ),
        tiles=tiles,
        blocks=(
            Figure(
                chart, Table("table-compliance", "Agreed follow-ups by owner and team", columns, table_rows)
            ),
        ),
    )


# ---------------------------------------------------------------------------------------------- API calls


def _api_section(variants: Sequence[Mapping[str, Any]]) -> Section:
    rows = [
        {"variant": v["name"], "crm": crm, "calls": v["api_calls"][crm]["total"]}
        for v in variants
        for crm in ("hubspot", "salesforce")
    ]
    chart = None
    if any(r["calls"] for r in rows):
        crms = ["hubspot", "salesforce"]
        chart = charts.render(
            alt.Chart({"values": rows})
            .mark_bar()
            .encode(
                alt.Y("variant:N", title=None, sort=[v["name"] for v in variants]),
                alt.X("calls:Q", title="API calls over the period"),
                alt.YOffset("crm:N", sort=crms),
                color=alt.Color(
                    "crm:N", title=None, scale=charts.colours(crms), legend=alt.Legend(orient="right")
                ),
                tooltip=["variant:N", "crm:N", "calls:Q"],
            )
            .properties(width=charts.WIDTH, height=max(60, 40 * len(variants))),
            id="chart-backtest-api",
            title="API calls to enforce each variant",
            description=(
                "What writing each variant's actions would have cost in API calls, on HubSpot and on "
                "Salesforce."
            ),
            marks=len(rows),
        )
    columns = (
        Column("variant"),
        Column("CRM", False, "crm"),
        Column("API calls", True, "total"),
        *_spread_columns("per working day (mean)"),
        Column("by endpoint"),
    )
    table_rows = [
        (
            Cell(v["name"]),
            Cell(crm),
            num(c["total"]),
            *_spread_cells(c["per_working_day"]),
            Cell(", ".join(f"{k}: {n:,}" for k, n in sorted(c["by_endpoint"].items())) or "–"),
        )
        for v in variants
        for crm in ("hubspot", "salesforce")
        if (c := v["api_calls"][crm])
    ]
    return Section(
        id="api-calls",
        title="API calls",
        intro=(
            "What writing each variant's actions would have cost, from the way the connectors batch their "
            "writes (one cycle is one apply), per working day of the policy calendar. Pulls are not counted."
        ),
        blocks=(
            Figure(chart, Table("table-backtest-api", "API calls by variant and CRM", columns, table_rows)),
        ),
    )
