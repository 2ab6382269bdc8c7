"""``followup demo``: the whole product in under a minute, on a seeded sandbox CRM started in-process.

1. start a HubSpot (or Salesforce) sandbox with a realistic seeded sales team, and a temp SQLite state;
2. pull it read-only and print the plan: what the shipped policy (or ``--policy``) would do now, and why;
3. run one real worker cycle (intents, batched writes through the official SDK, outcomes, audit);
4. print a summary (actions by kind and rule, API calls) and a few tasks read back from the CRM through
   the SDK, as a rep sees them: subject, due date in the owner's time zone, body with the evidence; a
   combined task (one conversation, a checklist of what to settle in it) comes first when there is one;
5. write the HTML report (``followup report``) of that state store and print its path.

``followup demo --backtest`` instead seeds the sandbox with six months of deal history and runs
``followup backtest --settings`` on it: the history pull through the official client (HubSpot's
``propertiesWithHistory``, Salesforce's ``OpportunityHistory``/``OpportunityFieldHistory``), then the replay
of the shipped policy with its tables.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from connectors.base import TaskView

POLICY = Path(__file__).resolve().parent.parent / "config" / "policies"
TOKEN_ENV = "FOLLOWUP_DEMO_TOKEN"  # noqa: S105 - the name of a variable, not a secret


@dataclass
class DemoCrm:
    """A running sandbox and the settings section that reaches it."""

    crm: str
    section: str
    sandbox: Any


def _followup_tasks(settings: Path, limit: int) -> list[TaskView]:
    """The tasks the cycle wrote, read back through the account's connector as a rep sees them."""
    import worker
    from config.settings import read_settings_file

    account = worker.load_accounts(read_settings_file(settings), "demo")[0]
    connector = worker.connector_for(account.settings.crm, account.options)
    try:
        return connector.followup_tasks(limit)
    finally:
        connector.close()


@contextmanager
def _start(crm: str, seed: int, deals: int, now: datetime, *, history: bool = False) -> Iterator[DemoCrm]:
    from crm_sandbox.dataset import generate

    dataset = generate(seed, deals, now, history=history)
    if crm == "hubspot":
        from crm_sandbox.hubspot import RateLimitConfig, running_hubspot_sandbox

        with running_hubspot_sandbox(dataset=dataset, now=now, rate_limits=RateLimitConfig.off()) as hs:
            os.environ[TOKEN_ENV] = hs.access_token
            section = (
                "    hubspot:\n"
                f"      host: '{hs.base_url}'\n"
                f"      access_token_env: {TOKEN_ENV}\n"
                f"      portal_id: {hs.portal.portal_id}\n"  # the report links deals into the portal
                "      tier: enterprise\n"
                "      search_per_second: 50\n"  # a local sandbox: no need to pace searches
            )
            yield DemoCrm(crm, section, hs)
        return
    from crm_sandbox.pipelines import stage_ids_by_name
    from crm_sandbox.salesforce import running_salesforce_sandbox

    with running_salesforce_sandbox(dataset=dataset, now=now) as sf:
        section = (
            "    salesforce:\n"
            f"      instance_url: '{sf.instance_url}'\n"
            f"      login_url: '{sf.instance_url}'\n"
            f"      ca_file: '{sf.ca_file}'\n"
            "      auth:\n"
            "        kind: jwt_bearer\n"
            f"        consumer_key: '{sf.consumer_key}'\n"
            f"        username: '{sf.username}'\n"
            f"        private_key_file: '{sf.private_key_file}'\n"
            # The admin's stage map: the org's StageNames -> the stage ids the (shared) policy uses.
            f"      stage_ids: {json.dumps(stage_ids_by_name())}\n"
        )
        yield DemoCrm(crm, section, sf)


def _write_settings(folder: Path, demo: DemoCrm, policy: Path = POLICY) -> Path:
    path = folder / "settings.yaml"
    path.write_text(
        "# Written by `followup demo`; run it again with: followup run --once --settings " + str(path) + "\n"
        "store: {url: 'sqlite:///state.sqlite'}\n"
        "logging: {level: warning}\n"
        "accounts:\n"
        "  demo:\n"
        f"    crm: {demo.crm}\n"
        f"    policy: '{policy.resolve()}'\n" + demo.section,
        encoding="utf-8",
    )
    return path


def run_demo(
    *, crm: str, deals: int, seed: int, show_tasks: int, keep: Path | None, policy_path: Path | None = None
) -> int:
    """Run the demo; returns the exit status (0 when the cycle completed)."""
    import worker
    from cli.progress import terminal_progress

    console = Console(width=None if sys.stdout.isatty() else 120)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    folder = keep or Path(tempfile.mkdtemp(prefix="followup-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    worker.configure_logging("warning", "auto")
    console.rule(f"[bold]crm-followup demo[/] · {crm} sandbox · {deals} seeded deals")
    started = time.monotonic()
    with _start(crm, seed, deals, now) as demo:
        settings = _write_settings(folder, demo, policy_path or POLICY)
        console.print(f"[dim]sandbox up at {_url(demo)} · settings {settings}[/]")

        console.rule(f"0 · setup: what the policy needs in the CRM (followup setup {crm})")
        _run_setup(console, crm, settings)

        console.rule("1 · plan: what the policy would do now (read-only)")
        snapshot, policy = worker.gather_snapshot(settings, "demo")
        _print_plan(console, snapshot, policy, now)

        console.rule("2 · one real cycle: pull → decide → write → record")
        results = worker.run_once(settings, progress=terminal_progress())
        result = results[0]
        _print_summary(console, result)

        if show_tasks:
            console.rule("3 · what a rep now sees in the CRM")
            zones = {o.id: o.time_zone for o in snapshot.owners}
            names = {o.id: o.name for o in snapshot.owners}
            for task in _showcase(_followup_tasks(settings, 200), show_tasks):
                console.print(_task_panel(task, zones, names, policy.calendar.time_zone))
    console.rule("4 · the report: hygiene, what the policy did, operations (followup report)")
    report = _write_report(console, settings, folder / "report.html")
    console.rule(f"done in {time.monotonic() - started:.1f} s")
    console.print(
        f"State (SQLite: mirror, ledger, audit) and settings are in [bold]{folder}[/].\n"
        "Next: [bold]followup run --once --settings FILE[/] against your CRM, or [bold]followup serve[/]; "
        "see docs/operations.md."
    )
    if report is not None:
        console.print(f"Report: [bold]{report}[/] (one file; open it in a browser, it needs no network)")
    return 0 if result.status == "ok" else 1


def run_demo_backtest(*, crm: str, deals: int, seed: int, keep: Path | None) -> int:
    """``followup demo --backtest``: a sandbox with history, then ``followup backtest --settings`` on it."""
    import worker
    from cli.backtest import backtest

    console = Console(width=None if sys.stdout.isatty() else 120)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    folder = keep or Path(tempfile.mkdtemp(prefix="followup-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    worker.configure_logging("warning", "auto")
    console.rule(
        f"[bold]crm-followup backtest demo[/] · {crm} sandbox · {deals} deals with six months of history"
    )
    started = time.monotonic()
    with _start(crm, seed, deals, now, history=True) as demo:
        settings = _write_settings(folder, demo)
        console.print(f"[dim]sandbox up at {_url(demo)} · settings {settings}[/]")
        console.rule(f"followup backtest --settings {settings}")
        console.print(
            "[dim]pulls every deal open now or changed in the last 180 days with its field history "
            "(read-only), then replays the policy over those days[/]"
        )
        try:
            backtest.main(
                args=["--settings", str(settings), "--account", "demo"],
                prog_name="followup backtest",
                standalone_mode=False,
            )
        except click.ClickException as exc:
            console.print(f"[red]the backtest failed:[/] {exc.format_message()}")
            return 1
        except SystemExit as exc:
            if exc.code:
                return int(exc.code) if isinstance(exc.code, int) else 1
    console.rule(f"done in {time.monotonic() - started:.1f} s")
    console.print(
        f"The history pull is kept in the state store next to the settings ([bold]{folder}[/]); "
        "against your CRM: [bold]followup backtest --settings FILE[/] (docs/backtest.md)."
    )
    return 0


def _run_setup(console: Console, crm: str, settings: Path) -> None:
    """Run ``followup setup CRM`` as an admin would once: custom fields, nurture list or campaign."""
    from cli.setup import setup

    args = [crm, "--settings", str(settings), "--account", "demo"]
    try:
        setup.main(args=args, prog_name="followup setup", standalone_mode=False)
    except click.ClickException as exc:
        console.print(f"[yellow]setup reported a problem:[/] {exc.format_message()}")
    except SystemExit as exc:
        if exc.code:
            console.print("[yellow]setup reported problems (above); the demo goes on[/]")


def _write_report(console: Console, settings: Path, out: Path) -> Path | None:
    """Run ``followup report`` on the demo's state store, as a manager would after the cycle."""
    from cli.report_command import report

    args = ["--settings", str(settings), "--account", "demo", "--out", str(out)]
    try:
        report.main(args=args, prog_name="followup report", standalone_mode=False)
    except click.ClickException as exc:
        console.print(f"[yellow]the report could not be written:[/] {exc.format_message()}")
        return None
    except SystemExit as exc:
        if exc.code:
            console.print("[yellow]the report could not be written (above)[/]")
            return None
    return out


def _url(demo: DemoCrm) -> str:
    return str(getattr(demo.sandbox, "base_url", None) or demo.sandbox.instance_url)


def _print_plan(console: Console, snapshot: Any, policy: Any, now: datetime) -> None:
    from cli.policy_tables import describe
    from policies.model import action_kind
    from policies.planner import plan

    owners = {o.id: o for o in snapshot.owners}
    result = plan(policy, snapshot.deals, now, owners)
    names = {d.id: d.name for d in snapshot.deals}
    table = Table(header_style="bold", expand=True)
    table.add_column("deal", max_width=26, no_wrap=True, overflow="ellipsis")
    table.add_column("rule · action", no_wrap=True)
    table.add_column("what, and why", ratio=1)
    shown = _varied(result.actions, 12)
    for action in shown:
        table.add_row(
            names.get(action.deal_id, action.deal_id),
            f"[cyan]{action.rule_id}[/]\n[magenta]{action_kind(action)}[/]",
            f"{escape(describe(action))}\n[dim]{escape(action.explanation.summary)}[/]",
        )
    console.print(table)
    kinds = Counter(action_kind(a) for a in result.actions)
    listed = ", ".join(f"{n} {k}" for k, n in kinds.most_common())
    console.print(
        f"{len(snapshot.deals)} open deals evaluated · {len(result.actions)} actions ({listed}) · "
        f"{len(result.deferred)} held back by budgets · showing {len(shown)}"
    )


def _varied(actions: Any, limit: int) -> list[Any]:
    """A sample that shows every rule before showing any rule twice."""
    by_rule: dict[str, list[Any]] = {}
    for action in actions:
        by_rule.setdefault(action.rule_id, []).append(action)
    out: list[Any] = []
    depth = 0
    while len(out) < limit and any(len(v) > depth for v in by_rule.values()):
        out.extend(v[depth] for v in by_rule.values() if len(v) > depth)
        depth += 1
    return out[:limit]


def _print_summary(console: Console, result: Any) -> None:
    table = Table(title=f"cycle {result.run_id} · {result.status}", header_style="bold")
    table.add_column("action")
    table.add_column("rule", style="cyan")
    table.add_column("outcome")
    table.add_column("count", justify="right")
    for (kind, rule, status), n in sorted(result.actions.items()):
        colour = "green" if status == "applied" else "yellow"
        table.add_row(kind, rule, f"[{colour}]{status}[/]", str(n))
    console.print(table)
    calls = Table(title=f"{result.api_calls} CRM API calls in {result.duration_s:.1f} s", header_style="bold")
    calls.add_column("endpoint")
    calls.add_column("calls", justify="right")
    ranked = sorted(result.api_calls_by_endpoint.items(), key=lambda kv: (-kv[1], kv[0]))
    for endpoint, n in ranked[:8]:
        calls.add_row(endpoint, str(n))
    if len(ranked) > 8:
        calls.add_row(f"[dim]{len(ranked) - 8} more endpoints[/]", str(sum(n for _, n in ranked[8:])))
    console.print(calls)


def _showcase(tasks: list[TaskView], limit: int) -> list[TaskView]:
    """The newest tasks, a combined one (one conversation, several items: ``tasks.combine``) first."""
    from connectors.checklist import MARKER

    combined = [t for t in tasks if MARKER in t.body][:1]
    return (combined + [t for t in tasks if t not in combined])[:limit]


def _task_panel(
    task: TaskView, zones: dict[str, str | None], names: dict[str, str], default_zone: str
) -> Panel:
    zone = zones.get(task.owner_id or "") or default_zone
    if isinstance(task.due, datetime):
        due = task.due.astimezone(ZoneInfo(zone)).strftime("%a %d %b %Y %H:%M") + f" ({zone})"
    else:
        due = task.due.strftime("%a %d %b %Y") if task.due else "-"
    owner = names.get(task.owner_id or "", task.owner_id or "unassigned")
    return Panel(
        escape(task.body.strip()),
        title=f"[bold]{escape(task.subject)}[/]",
        subtitle=f"due {due} · {owner}",
        title_align="left",
        subtitle_align="left",
    )
