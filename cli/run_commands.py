"""``followup run``, ``followup serve`` and ``followup demo``: the worker as people run it."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from config.errors import ConfigError
from config.settings import read_settings_file

SETTINGS_HELP = "The settings file (see config/settings.example.yaml)."
# cycle statuses that leave nothing to do: done, or another worker holds the account's lease and runs it
COMPLETED = frozenset({"ok", "lease_held"})


def _settings_option(function: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--settings",
        "settings_path",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        envvar="FOLLOWUP_SETTINGS",
        required=True,
        help=SETTINGS_HELP + " Also FOLLOWUP_SETTINGS.",
    )(function)


def _report(exc: ConfigError) -> None:
    """Every configuration problem on its own ``file:line:col`` line, then exit status 2."""
    for problem in exc.problems:
        click.echo(problem, err=True)
    sys.exit(2)


@click.command()
@_settings_option
@click.option("--once", is_flag=True, required=True, help="Run one cycle per account, then exit.")
@click.option("--account", help="Only this account (default: every enabled account).")
def run(settings_path: Path, once: bool, account: str | None) -> None:
    """Run one gather -> decide -> act cycle per account, then exit.

    Exit status: 0 when every cycle completed (or was skipped because another worker is running that
    account right now: lease_held), 1 when one stopped early (the CRM asked to retry later, or its
    configuration needs fixing: see the log), 2 for invalid settings or policies.
    """
    try:
        settings = read_settings_file(settings_path).settings  # before importing the worker: fails faster
        import worker
        from cli.progress import terminal_progress

        worker.configure_logging(settings.logging.level, settings.logging.format)
        results = worker.run_once(settings_path, account=account, progress=terminal_progress())
    except ConfigError as exc:
        _report(exc)
        return
    sys.exit(0 if results and all(r.status in COMPLETED for r in results) else 1)


@click.command()
@_settings_option
def serve(settings_path: Path) -> None:
    """Run the scheduler: every account on its interval or cron, until SIGTERM or Ctrl-C.

    Serves /healthz and Prometheus /metrics on the metrics port of the settings file. A stop finishes
    the batch in flight, keeps the state consistent and exits.
    """
    import worker

    try:
        settings = read_settings_file(settings_path).settings
        worker.configure_logging(settings.logging.level, settings.logging.format)
        code = worker.serve(settings_path)
    except ConfigError as exc:
        _report(exc)
        return
    sys.exit(code)


@click.command()
@click.option("--crm", type=click.Choice(["hubspot", "salesforce"]), default="hubspot", show_default=True)
@click.option("--deals", type=click.IntRange(10, 5000), default=120, show_default=True, help="Deals to seed.")
@click.option("--seed", type=int, default=7, show_default=True, help="Dataset seed (same seed, same data).")
@click.option("--tasks", "show_tasks", type=click.IntRange(0, 20), default=3, show_default=True)
@click.option(
    "--keep",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the settings file and state database in this folder (default: a temp folder).",
)
@click.option(
    "--snapshot-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Instead of running the demo, write a seeded pipeline with history as a snapshot for "
    "`followup backtest --snapshot FILE`, and stop.",
)
@click.option("--now", help="With --snapshot-out: when the snapshot is taken (ISO; default: now).")
@click.option(
    "--backtest",
    is_flag=True,
    help="Instead of a cycle, start the sandbox with six months of deal history and run `followup "
    "backtest --settings` on it: the live history pull through the official client, then the replay.",
)
@click.option(
    "--policy",
    type=click.Path(exists=True, path_type=Path),
    help="Run the cycle with this policy file or folder instead of the shipped config/policies "
    "(e.g. a copy with `tasks: {combine: false}`).",
)
def demo(
    crm: str,
    deals: int,
    seed: int,
    show_tasks: int,
    keep: Path | None,
    snapshot_out: Path | None,
    now: str | None,
    backtest: bool,
    policy: Path | None,
) -> None:
    """Start a seeded sandbox CRM, show the plan, run a real cycle, and show tasks as a rep sees them."""
    if snapshot_out is not None:
        from cli.demo_snapshot import write_demo_snapshot

        sys.exit(write_demo_snapshot(snapshot_out, deals=deals, seed=seed, now=now))
    if now is not None:
        raise click.UsageError("--now goes with --snapshot-out")
    if backtest:
        from cli.demo import run_demo_backtest

        sys.exit(run_demo_backtest(crm=crm, deals=deals, seed=seed, keep=keep))
    from cli.demo import run_demo

    sys.exit(run_demo(crm=crm, deals=deals, seed=seed, show_tasks=show_tasks, keep=keep, policy_path=policy))
