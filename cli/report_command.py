"""``followup report``: a self-contained HTML report from the state store (see docs/report.md)."""

from __future__ import annotations

import shlex
import sys
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from config.errors import ConfigError

if TYPE_CHECKING:
    from config.settings import SettingsFile
    from report.sources import AccountSource


def _span(_ctx: click.Context, _param: click.Parameter, value: str) -> timedelta:
    from config.settings import parse_span

    try:
        return parse_span(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _moment(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO date-time such as 2026-03-04T10:00:00+00:00"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def account_sources(settings_file: SettingsFile, only: str | None) -> list[AccountSource]:
    """What the report needs per account from the settings: policy, mode, record links, budget share."""
    import worker
    from report.sources import AccountSource

    sources = []
    for account in worker.load_accounts(settings_file, only):
        options = account.options
        if account.settings.crm == "hubspot":
            portal = options.portal_id
            url = f"{options.app_url.rstrip('/')}/contacts/{portal}/deal/{{id}}" if portal else None
        else:
            base = options.instance_url
            url = f"{base}/lightning/r/Opportunity/{{id}}/view" if base else None
        explain = (
            f"followup explain --settings {shlex.quote(str(settings_file.path))} "
            f"--account {shlex.quote(account.name)} --deal {{id}}"
        )
        sources.append(
            AccountSource(
                name=account.name,
                crm=account.settings.crm,
                policy=account.policy,
                shadow=account.shadow,
                deal_url=url,
                budget_share=options.daily_budget_share,
                explain=explain,
            )
        )
    return sources


def backtest_problems(path: Path) -> tuple[dict[str, Any] | None, list[str]]:
    """A ``followup backtest --json`` file, checked against its published schema: the report, or every
    problem as ``file:line:col: path: message``."""
    import json

    import jsonschema

    from config.jsonsource import read_json_text

    source = read_json_text(path)  # within the size limit; ConfigError otherwise
    try:
        data = json.loads(source.text)
    except json.JSONDecodeError as exc:
        return None, [f"{path}:{exc.lineno}:{exc.colno}: {exc.msg}"]
    text = resources.files("report").joinpath("assets", "backtest.schema.json").read_text(encoding="utf-8")
    validator = jsonschema.Draft202012Validator(json.loads(text))
    errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))[:50]
    if not errors:
        return data, []
    places = source.places(tuple(e.absolute_path) for e in errors)
    problems = []
    for error in errors:
        loc = tuple(error.absolute_path)
        where = ".".join(map(str, loc)) or "(top level)"
        hint = " (is this the output of `followup backtest --json`?)" if not loc else ""
        problems.append(f"{places[loc]}: {where}: {error.message[:300]}{hint}")
    return None, problems


@click.command()
@click.option(
    "--settings",
    "settings_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="FOLLOWUP_SETTINGS",
    help="The settings file (its store, accounts and policies). Also FOLLOWUP_SETTINGS.",
)
@click.option(
    "--backtest",
    "backtest_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Render the results of `followup backtest --json` (this file) instead of the state store.",
)
@click.option("--account", help="Only this account (default: every enabled account).")
@click.option(
    "--since",
    default="30d",
    show_default=True,
    callback=_span,
    help="The period before --now: 30d, 12h, 2d...",
)
@click.option("--now", callback=_moment, help="ISO date-time the report is as of (default: now).")
@click.option(
    "--deal-rows",
    type=click.IntRange(1, 5000),
    default=100,
    show_default=True,
    help="Rows per deal list (every count still covers all deals).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("report.html"),
    show_default=True,
    help="The HTML file to write.",
)
def report(
    settings_path: Path | None,
    backtest_path: Path | None,
    account: str | None,
    since: timedelta,
    now: datetime,
    deal_rows: int,
    out: Path,
) -> None:
    """Write one self-contained HTML report (hygiene, policy activity, rollout, operations), or with
    --backtest FILE.json the results of a backtest (false kills, busy work, compliance, variants).

    It reads the state store (or the backtest's file) only, no CRM call, and opens offline: charts are
    inline SVG, the table sorter is inlined, nothing is fetched. Exit status 2 for invalid settings,
    policies or backtest files.
    """
    from config.settings import read_settings_file

    try:
        from report import ReportRequest, build_page, render_html
        from report.sources import parallel_from
    except ImportError as exc:  # the charting packages are an extra
        click.echo(
            f"followup report needs the report extra: pip install 'crm-followup[report]' ({exc.name})",
            err=True,
        )
        sys.exit(2)
    if (settings_path is None) == (backtest_path is None):
        raise click.UsageError("give --settings (the live report) or --backtest FILE.json (a backtest's)")
    if backtest_path is not None:
        _write(out, _backtest_html(backtest_path))
        return
    assert settings_path is not None
    from store import StateStore
    from store.database import RecreateStore

    try:
        settings_file = read_settings_file(settings_path)
        sources = account_sources(settings_file, account)
        try:
            store = StateStore(settings_file.store_url())
        except RecreateStore as exc:
            from worker import store_problem

            raise store_problem(settings_file, exc) from None
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        sys.exit(2)
    try:
        request = ReportRequest(store, tuple(sources), now - since, now, deal_rows, parallel_from())
        html = render_html(build_page(request))
    finally:
        store.close()
    _write(out, html)


def _backtest_html(path: Path) -> str:
    from report import render_html
    from report.backtest import build_backtest_page

    try:
        data, problems = backtest_problems(path)
    except ConfigError as exc:
        problems, data = list(exc.problems), None
    if data is None:
        for problem in problems:
            click.echo(problem, err=True)
        sys.exit(2)
    return render_html(build_backtest_page(data, source=path.name))


def _write(out: Path, html: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    size = out.stat().st_size
    click.echo(f"report written: {out.resolve()} ({size / 1024:,.0f} KiB)")
