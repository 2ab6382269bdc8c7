"""Rich tables for ``followup backtest``: the report (``policies.backtest``) as a sales manager reads it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from policies.backtest import history_notes

Row = tuple[str, Callable[[Mapping[str, Any]], str]]


def _money(value: float) -> str:
    return f"{value:,.0f}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _side_by_side() -> list[Row]:
    def stops(key: str) -> Callable[[Mapping[str, Any]], str]:
        return lambda v: str(v["account"]["stops"][key])

    def busy(key: str) -> Callable[[Mapping[str, Any]], str]:
        return lambda v: str(v["account"]["busy_work"][key])

    return [
        ("closed lost by the policy", stops("stopped")),
        ("nurtured by the policy", stops("nurtured")),
        (
            "[red]false kills[/] (won / moved forward later)",
            lambda v: (
                f"[red]{v['account']['stops']['false_kills']}[/] "
                f"({v['account']['stops']['false_kills_won']} won)"
            ),
        ),
        ("  their amount", lambda v: _money(v["account"]["stops"]["false_kill_amount"])),
        ("[green]true stops[/] (lost anyway)", stops("true_stops")),
        ("  pipeline days saved", lambda v: f"{v['account']['stops']['days_saved']:,.0f}"),
        (
            "  unresolved / reactivated",
            lambda v: f"{v['account']['stops']['unresolved']} / {v['account']['stops']['reactivated']}",
        ),
        ("tasks created", busy("tasks_created")),
        (
            "  per owner per working day (mean / p95)",
            lambda v: (
                f"{v['account']['busy_work']['per_working_day']['mean']:.2f} / "
                f"{v['account']['busy_work']['per_working_day']['p95']:.0f}"
            ),
        ),
        ("  owner-days at the cap", busy("days_at_cap")),
        (
            "  deferred by budgets / expired",
            lambda v: f"{v['account']['busy_work']['deferred']} / {v['account']['busy_work']['expired']}",
        ),
        (
            "nurture enrolments / reactivations",
            lambda v: f"{v['account']['nurture']['enrolments']} / {v['account']['nurture']['reactivations']}",
        ),
        ("  reactivated, then won", lambda v: str(v["account"]["nurture"]["reactivated_then_won"])),
        ("next step complete (mean share)", lambda v: _share(v["account"]["next_step_completeness"])),
        (
            "API calls per working day, HubSpot (mean / p95)",
            lambda v: (
                f"{v['api_calls']['hubspot']['per_working_day']['mean']:.1f} / "
                f"{v['api_calls']['hubspot']['per_working_day']['p95']:.0f}"
            ),
        ),
        (
            "API calls per working day, Salesforce (mean / p95)",
            lambda v: (
                f"{v['api_calls']['salesforce']['per_working_day']['mean']:.1f} / "
                f"{v['api_calls']['salesforce']['per_working_day']['p95']:.0f}"
            ),
        ),
    ]


def render_report(report: Mapping[str, Any], top: int, console: Console | None = None) -> None:
    console = console or Console()
    period, snapshot, history = report["period"], report["snapshot"], report["history"]
    console.rule(
        f"[bold]backtest[/] {period['from']} .. {period['to']} · {snapshot['deals']} deals "
        f"({snapshot['deals_with_history']} with history) · a cycle every {period['step_minutes']} min"
    )
    notes = history_notes(history)
    for note in notes:
        console.print(f"[yellow]note:[/] {note}")
    variants: Sequence[Mapping[str, Any]] = report["variants"]
    table = Table(title="Policy variants side by side", header_style="bold")
    table.add_column("")
    for variant in variants:
        table.add_column(variant["name"], justify="right", overflow="fold")
    for label, cell in _side_by_side():
        table.add_row(label, *(cell(v) for v in variants))
    console.print(table)
    for variant in variants:
        if variant["shadowed_by"]:
            console.print(
                f"[yellow]note:[/] {variant['name']}: overrides that set the swept key keep their own value: "
                + ", ".join(variant["shadowed_by"])
            )
    if top:
        for variant in variants:
            _false_kills(console, variant, top)
    _owners(console, variants[0])
    _compliance(console, report["compliance"])
    _completeness(console, variants[0])
    console.print("[dim]--json: every figure per owner and team, every false kill and true stop[/]")


def _false_kills(console: Console, variant: Mapping[str, Any], top: int) -> None:
    kills = sorted(variant["false_kills"], key=lambda s: (-(s["amount"] or 0), s["stopped_at"]))
    if not kills:
        console.print(f"[green]{variant['name']}: no false kills[/]")
        return
    table = Table(
        title=f"{variant['name']}: false kills (largest {min(top, len(kills))} of {len(kills)})",
        header_style="bold",
    )
    for column in ("deal", "owner", "stopped on", "why", "then"):
        table.add_column(column, overflow="fold")
    for stop in kills[:top]:
        evidence = "; ".join(f"{e['label']}: {e['value']}" for e in stop["evidence"])
        then = "; ".join(f"{e['label']}: {e['value']}" for e in stop["after_the_stop"])
        amount = f" ({_money(stop['amount'])})" if stop["amount"] else ""
        table.add_row(
            f"{stop['deal_name']}{amount}",
            stop["owner_id"] or "-",
            f"{stop['stopped_on']} ({stop['kind']})",
            f"{stop['summary']}\n[dim]{evidence}[/]",
            f"[red]{stop['outcome'].replace('_', ' ')}[/] {stop['outcome_on'] or ''}\n[dim]{then}[/]",
        )
    console.print(table)


def _owners(console: Console, variant: Mapping[str, Any]) -> None:
    table = Table(title=f"{variant['name']}: per owner", header_style="bold")
    for column in (
        "owner",
        "tasks / working day",
        "p95",
        "days at cap",
        "deferred",
        "expired",
        "false kills",
        "true stops",
        "next step complete",
    ):
        table.add_column(column, justify="right" if column != "owner" else "left")
    for owner, figures in variant["owners"].items():
        busy, stops = figures["busy_work"], figures["stops"]
        table.add_row(
            owner,
            f"{busy['per_working_day']['mean']:.2f}",
            f"{busy['per_working_day']['p95']:.0f}",
            str(busy["days_at_cap"]),
            str(busy["deferred"]),
            str(busy["expired"]),
            str(stops["false_kills"]),
            str(stops["true_stops"]),
            _share(figures["next_step_completeness"]),
        )
    console.print(table)


def _compliance(console: Console, compliance: Mapping[str, Any]) -> None:
    table = Table(
        title="Agreed follow-ups as they really happened "
        f"(±{compliance['tolerance_business_days']} business day)",
        header_style="bold",
    )
    columns = ("agreements", "early", "on_time", "late", "customer_first", "never", "pending")
    table.add_column("")
    for column in columns:
        table.add_column(column.replace("_", " "), justify="right")
    table.add_column("late by (mean bd)", justify="right")
    rows = [("account", compliance["account"])] + [(f"owner {k}", v) for k, v in compliance["owners"].items()]
    for label, figures in rows:
        table.add_row(
            label, *(str(figures[c]) for c in columns), f"{figures['business_days_late']['mean']:.1f}"
        )
    console.print(table)


def _completeness(console: Console, variant: Mapping[str, Any]) -> None:
    series = variant["next_step_completeness"]
    if not series:
        return
    table = Table(title="Open deals with a complete next step (weekly)", header_style="bold")
    table.add_column("week of")
    table.add_column("open deals", justify="right")
    table.add_column("complete", justify="right")
    for point in series:
        table.add_row(point["date"], str(point["open_deals"]), _share(point["share"]))
    console.print(table)
