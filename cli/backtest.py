"""``followup backtest``: what policies would have done to a pipeline, replayed on its own history.

Reads a snapshot with history (``--snapshot FILE``; the format of ``policies.codec`` with its ``history``
part) or pulls one live (``--settings FILE [--account A]``, through ``worker.gather_history_snapshot``:
incrementally through the state store's history tables, or afresh with ``--no-store``), replays each
policy variant over ``--from``/``--to`` (default: the last 180 days before the snapshot was taken) and
prints rich tables, or with ``--json`` one JSON document
(docs/backtest.md, schema docs/backtest.schema.json). Writes nothing anywhere. Problems a human must fix
(a bad policy, snapshot, date or sweep) exit with code 2 and print only the problem lines.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cli.policy_commands import DEFAULT_POLICY, _fail, _load_policy, _load_snapshot

if TYPE_CHECKING:
    from policies.codec import Snapshot
    from policies.policy import Policy

DEFAULT_DAYS = 180


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        _fail([f"{option}: {value!r} is not a date such as 2026-03-04"])


def _live(settings: Path, account: str | None, since: date, *, use_store: bool) -> tuple[Snapshot, Policy]:
    """A snapshot with history pulled from the CRM (``worker.gather_history_snapshot``); what the pull
    left out or could only approximate is said on stderr (stdout is the report)."""
    from config.errors import ConfigError
    from connectors.errors import FixConfiguration, RetryLater
    from worker import gather_history_snapshot

    try:
        found = gather_history_snapshot(settings, account, since, use_store=use_store)
    except ConfigError as exc:
        _fail(exc.problems)
    except FixConfiguration as exc:
        _fail([f"{settings}: {exc}"])
    except RetryLater as exc:
        click.echo(f"{settings}: the CRM did not answer in time, try again later: {exc}", err=True)
        sys.exit(1)
    pull = found.pull
    click.echo(
        f"pulled {pull.deals_pulled} deals ({'in full' if pull.full else 'changed since the last pull'}), "
        f"read {pull.histories_read} histories, {found.api_calls} API calls; "
        f"{len(found.snapshot.deals)} deals to replay",
        err=True,
    )
    for note in pull.notes:
        click.echo(f"note: {note}", err=True)
    for record in pull.rejected:
        click.echo(f"left out: {record.detail or record.record_id}", err=True)
    return found.snapshot, found.policy


def _checked_history(snapshot: Snapshot, where: str) -> None:
    from policies.history import history_problems

    if snapshot.history is None:
        _fail(
            [
                f"{where}: history: this snapshot has no history, so there is nothing to replay; "
                "see docs/backtest.md for the format (followup demo --snapshot-out FILE writes an example)"
            ]
        )
    problems = [
        f"{where}: {'.'.join(loc)}: {message}"
        for loc, message in history_problems(snapshot.deals, snapshot.history)
    ]
    if problems:
        _fail(problems)


@click.command()
@click.option(
    "--snapshot", "snapshot_path", type=click.Path(path_type=Path), help="JSON snapshot with history"
)
@click.option("--settings", type=click.Path(path_type=Path), help="settings file: pull the history live")
@click.option("--account", help="account in the settings file (default: the only one)")
@click.option(
    "--no-store",
    "no_store",
    is_flag=True,
    help="with --settings: pull everything afresh and keep it in memory, leaving the state store alone "
    "(default: pull what changed since the last backtest, through the state store's history tables)",
)
@click.option(
    "--from",
    "from_day",
    help=f"first day, e.g. 2026-01-05 (default: {DEFAULT_DAYS} days before --to)",
)
@click.option("--to", "to_day", help="last day (default: the day the snapshot was taken)")
@click.option(
    "--policy",
    "policy_paths",
    multiple=True,
    type=click.Path(path_type=Path),
    help="policy file or folder; repeat to compare variants side by side (default: config/policies)",
)
@click.option(
    "--sweep",
    "sweeps",
    multiple=True,
    help="KEY=V1,V2,... under the policy's defaults (or budgets.KEY): one variant per value, e.g. "
    "stop.max_unanswered_touches=4,6,8,10; repeat to combine",
)
@click.option(
    "--step-minutes",
    type=click.IntRange(5, 24 * 60),
    default=60,
    show_default=True,
    help="minutes between the simulated worker's cycles inside working hours",
)
@click.option(
    "--top",
    type=click.IntRange(0, 1000),
    default=10,
    show_default=True,
    help="false kills listed per variant",
)
@click.option(
    "--json", "as_json", is_flag=True, help="print one JSON document (docs/backtest.md) instead of tables"
)
def backtest(
    snapshot_path: Path | None,
    settings: Path | None,
    account: str | None,
    no_store: bool,
    from_day: str | None,
    to_day: str | None,
    policy_paths: tuple[Path, ...],
    sweeps: tuple[str, ...],
    step_minutes: int,
    top: int,
    as_json: bool,
) -> None:
    """Replay policies over a pipeline's history: false kills, true stops, busy work, compliance, API cost.

    Nothing is written to the CRM or anywhere else.
    """
    from config.errors import ConfigError
    from policies.backtest import Period, prepare, run_backtest
    from policies.sweep import parse_sweep, variants

    first, last = _day(from_day, "--from"), _day(to_day, "--to")
    if snapshot_path is not None and settings is not None:
        _fail(["give either --snapshot FILE or --settings FILE, not both"])
    if snapshot_path is None and settings is None:
        _fail(["give a snapshot with history (--snapshot FILE) or --settings FILE"])
    if no_store and settings is None:
        _fail(["--no-store goes with --settings FILE (a snapshot file never touches the state store)"])
    live_policy = None
    if settings is not None:
        since = (last or datetime.now(UTC).date()) - timedelta(days=DEFAULT_DAYS) if first is None else first
        snapshot, live_policy = _live(settings, account, since, use_store=not no_store)
        where = str(settings)
    else:
        assert snapshot_path is not None
        snapshot = _load_snapshot(snapshot_path)
        where = str(snapshot_path)
    _checked_history(snapshot, where)
    if last is None:
        if snapshot.taken_at is None:
            _fail([f"{where}: taken_at: the snapshot does not say when it was taken; give --to DATE"])
        last = snapshot.taken_at.date()
    if first is None:
        first = last - timedelta(days=DEFAULT_DAYS)
    if first > last:
        _fail([f"--from {first.isoformat()} is after --to {last.isoformat()}"])
    policies: list[tuple[str, Policy]] = [(str(p), _load_policy(p)) for p in policy_paths]
    if not policies:
        policies = (
            [("live policy", live_policy)]
            if live_policy is not None
            else [(str(DEFAULT_POLICY), _load_policy(DEFAULT_POLICY))]
        )
    try:
        chosen = variants(policies, [parse_sweep(s) for s in sweeps])
    except ConfigError as exc:
        _fail(exc.problems)
    prepared = prepare(snapshot)
    del snapshot  # the timelines hold the deals compactly: the snapshot's objects can go
    report = run_backtest(prepared, chosen, Period(first, last, timedelta(minutes=step_minutes)))
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    from cli.backtest_tables import render_report

    render_report(report, top)
