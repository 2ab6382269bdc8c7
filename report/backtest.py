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
from typing import Any, NamedTuple

import altair as alt

from policies.backtest import history_notes
from report import charts
from report.model import Cell, Column, Figure, Page, Section, Table, Tile, num
from report.tables import Field, R, number, table, text

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
    rows_of = [_Row(v, "", v["account"]) for v in variants]
    side_by_side = table("table-variants", "Variants side by side", _VARIANT_FIELDS, rows_of)
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
        blocks=(Figure(chart, side_by_side),),
        notes=tuple(notes),
    )


def _settings(variant: Mapping[str, Any]) -> str:
    values = ", ".join(f"{k}={v}" for k, v in variant["settings"].items())
    return f"{variant['policy']}" + (f" ({values})" if values else "")


class _Row(NamedTuple):
    """A row of figures: the variant, the group they are of ("(account)" or an owner), and the figures
    (``stops``, ``busy_work``, ``next_step_completeness``: one of the report's figure blocks)."""

    variant: Mapping[str, Any]
    group: str
    figures: Mapping[str, Any]


def _figure(label: str, block: str, name: str, *, digits: int = 0) -> Field[_Row]:
    """A number of a figures block: ``figures[block][name]``, its column keyed by the name."""
    return number(label, lambda row: row.figures[block][name], key=name, digits=digits)


def _spread(
    mean_label: str, spread: Callable[[R], Mapping[str, float | None]], key: str = "", mean_digits: int = 2
) -> tuple[Field[R], ...]:
    """A spread's fields: the mean (``mean_label``, to ``mean_digits``), the 95th percentile and the maximum
    (to one digit); ``key`` (e.g. ``late``) prefixes their column keys (``late_mean``, ``late_p95``...)."""
    prefix = f"{key}_" if key else ""
    return (
        number(mean_label, lambda r: spread(r)["mean"], key=f"{prefix}mean", digits=mean_digits),
        number("p95", lambda r: spread(r)["p95"], key=f"{prefix}p95", digits=1),
        number("max", lambda r: spread(r)["max"], key=f"{prefix}max", digits=1),
    )


_VARIANT: Field[_Row] = text("variant", lambda row: row.variant["name"])
_TRUE_STOPS = _figure("true stops", "stops", "true_stops")
_BUSY = (
    _figure("days at cap", "busy_work", "days_at_cap"),
    _figure("deferred", "busy_work", "deferred"),
    _figure("expired", "busy_work", "expired"),
)
_COMPLETENESS: Field[_Row] = Field(
    Column("next step complete", True, "next_step_completeness"),
    lambda row: _share(row.figures["next_step_completeness"]),
)


def _per_working_day(row: _Row) -> Mapping[str, float | None]:
    spread: Mapping[str, float | None] = row.figures["busy_work"]["per_working_day"]
    return spread


_VARIANT_FIELDS: tuple[Field[_Row], ...] = (
    _VARIANT,
    _figure("stopped", "stops", "stopped"),
    _figure("nurtured", "stops", "nurtured"),
    _figure("false kills", "stops", "false_kills"),
    _figure("of them won", "stops", "false_kills_won"),
    _figure("false kill amount", "stops", "false_kill_amount"),
    _TRUE_STOPS,
    _figure("days saved", "stops", "days_saved", digits=1),
    _figure("reactivated", "stops", "reactivated"),
    _figure("unresolved", "stops", "unresolved"),
    _figure("tasks created", "busy_work", "tasks_created"),
    *_spread("tasks per rep per working day (mean)", _per_working_day, "tasks"),
    *_BUSY,
    _COMPLETENESS,
    text("settings", lambda row: _settings(row.variant)),
)
_BUSY_WORK_FIELDS: tuple[Field[_Row], ...] = (
    _VARIANT,
    text("owner", lambda row: row.group),
    _figure("tasks created", "busy_work", "tasks_created"),
    _figure("working days", "busy_work", "working_days"),
    *_spread("per working day (mean)", _per_working_day),
    *_BUSY,
    _figure("false kills", "stops", "false_kills"),
    _TRUE_STOPS,
    _COMPLETENESS,
)


def _share(value: float | None) -> Cell:
    return num(None if value is None else 100 * value, digits=1, suffix="%")


# ---------------------------------------------------------------------------------------------- false kills


def _labelled(entries: Sequence[Mapping[str, Any]]) -> str:
    return "; ".join(f"{e['label']}: {e['value']}" for e in entries)


def _why(stop: Mapping[str, Any]) -> str:
    evidence = _labelled(stop["evidence"])
    return f"{stop['summary']} ({evidence})" if evidence else str(stop["summary"])


Stop = tuple[str, Mapping[str, Any]]  # the variant's name, one of its stops

_FALSE_KILL_FIELDS: tuple[Field[Stop], ...] = (
    text("variant", lambda s: s[0]),
    text("deal id", lambda s: s[1]["deal_id"], key="deal_id"),
    text("deal", lambda s: s[1]["deal_name"]),
    text("owner", lambda s: s[1]["owner_id"] or "–"),
    text("stopped on", lambda s: s[1]["stopped_on"], key="stopped_on"),
    text("kind", lambda s: s[1]["kind"]),
    text("rule", lambda s: s[1]["rule"]),
    number("amount", lambda s: s[1]["amount"]),
    text("why", lambda s: _why(s[1])),
    text("then", lambda s: s[1]["outcome"].replace("_", " "), key="outcome"),
    text("on", lambda s: s[1]["outcome_on"] or "–", key="outcome_on"),
    text("after the stop", lambda s: _labelled(s[1]["after_the_stop"]) or "–", key="after"),
)


def _false_kills_section(variants: Sequence[Mapping[str, Any]]) -> Section:
    stops = [
        (v["name"], stop)
        for v in variants
        for stop in sorted(v["false_kills"], key=lambda s: (-(s["amount"] or 0), s["stopped_at"]))
    ]
    total = len(stops)
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
    kills = table(
        "table-false-kills",
        "False kills: deals stopped that were won or moved forward later",
        _FALSE_KILL_FIELDS,
        stops,
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
        blocks=(Figure(chart, kills),),
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
    rows = [
        _Row(v, group, figures)
        for v in variants
        for group, figures in (("(account)", v["account"]), *sorted(v["owners"].items()))
    ]
    by_rule = table(
        "table-backtest-by-rule",
        "New tasks by rule",
        (text("variant", lambda r: r[0]), text("rule", lambda r: r[1]), number("tasks", lambda r: r[2])),
        [
            (v["name"], rule, n)
            for v in variants
            for rule, n in sorted(v["account"]["busy_work"]["by_rule"].items())
        ],
    )
    per_day = _dated_table("table-backtest-daily", "Per day: tasks, stops, nurture", variants, _DAILY)
    return Section(
        id="busy-work",
        title="Busy work",
        intro=(
            "The work each variant would have handed out: tasks per owner per working day of the owner's "
            "calendar (mean, 95th percentile, maximum), days at the daily cap, tasks a budget deferred "
            "(created later, never dropped) and tasks that expired because nobody acted on them."
        ),
        blocks=(
            Figure(chart, table("table-busy-work", "Busy work per owner", _BUSY_WORK_FIELDS, rows)),
            by_rule,
            per_day,
        ),
    )


Dated = tuple[str, Mapping[str, Any]]  # a variant's name, an entry of one of its dated series


def _entry(label: str, name: str, show: Callable[[Any], Cell] = num) -> Field[Dated]:
    """A number of a dated entry: ``entry[name]``, its column keyed by the name."""
    return Field(Column(label, True, name), lambda dated: show(dated[1][name]))


class _Series(NamedTuple):
    """A dated series of each variant (``variant[key]``, entries with a ``date``) and what a table shows."""

    key: str
    date_label: str
    measures: tuple[Field[Dated], ...]
    skip_empty: bool = False  # leave out the entries where every measure is zero


def _dated_table(id: str, caption: str, variants: Sequence[Mapping[str, Any]], series: _Series) -> Table:
    """One row per variant and entry of its dated ``series``."""
    fields = (
        text("variant", lambda d: d[0]),
        text(series.date_label, lambda d: d[1]["date"]),
        *series.measures,
    )
    entries = [
        (v["name"], e)
        for v in variants
        for e in v[series.key]
        if not series.skip_empty or any(e[m.column.name] for m in series.measures)
    ]
    return table(id, caption, fields, entries)


_DAILY = _Series(
    "daily",
    "day",
    (_entry("tasks created", "tasks_created"), _entry("stopped", "stopped"), _entry("nurtured", "nurtured")),
    skip_empty=True,
)
_WEEKLY = _Series(
    "next_step_completeness",
    "week of",
    (_entry("open deals", "open_deals"), _entry("complete", "complete"), _entry("share", "share", _share)),
)


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
    weekly = _dated_table("table-backtest-completeness", "Next-step completeness per week", variants, _WEEKLY)
    return Section(
        id="completeness",
        title="Next-step completeness",
        intro=(
            "Each week, the share of open deals whose next step is complete (a specific what, a why, a date "
            "not passed) by the variant's own rule, as the reps kept them: what the next-step rule would "
            "have had to fix."
        ),
        blocks=(Figure(chart, weekly),),
    )


# ---------------------------------------------------------------------------------------------- compliance


Group = tuple[str, str, Mapping[str, Any]]  # kind (account, owner, team), name, its compliance figures


def _verdict(verdict: str) -> Field[Group]:
    return number(VERDICT_LABELS[verdict], lambda g: g[2][verdict], key=verdict)


def _on_time_share(group: Group) -> float | None:
    c = group[2]
    judged = c["early"] + c["on_time"] + c["late"] + c["never"]
    return 100 * c["on_time"] / judged if judged else None


_COMPLIANCE_FIELDS: tuple[Field[Group], ...] = (
    text("group", lambda g: g[0]),
    text("name", lambda g: g[1]),
    number("agreements", lambda g: g[2]["agreements"]),
    *(_verdict(v) for v in VERDICTS),
    number("on time, share", _on_time_share, key="on_time_share", digits=1, suffix="%"),
    *_spread("business days late (mean)", lambda g: g[2]["business_days_late"], "late", mean_digits=1),
)


def _compliance_section(compliance: Mapping[str, Any]) -> Section:
    groups: list[Group] = [("account", "(account)", compliance["account"])]
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
                chart,
                table("table-compliance", "Agreed follow-ups by owner and team", _COMPLIANCE_FIELDS, groups),
            ),
        ),
    )


# ---------------------------------------------------------------------------------------------- API calls


Cost = tuple[str, str, Mapping[str, Any]]  # a variant's name, a CRM, what enforcing it costs there


def _endpoints(cost: Cost) -> str:
    return ", ".join(f"{k}: {n:,}" for k, n in sorted(cost[2]["by_endpoint"].items())) or "–"


_API_FIELDS: tuple[Field[Cost], ...] = (
    text("variant", lambda c: c[0]),
    text("CRM", lambda c: c[1], key="crm"),
    number("API calls", lambda c: c[2]["total"], key="total"),
    *_spread("per working day (mean)", lambda c: c[2]["per_working_day"]),
    text("by endpoint", _endpoints),
)


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
    costs = [
        (v["name"], crm, c)
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
            Figure(chart, table("table-backtest-api", "API calls by variant and CRM", _API_FIELDS, costs)),
        ),
    )
