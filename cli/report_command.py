"""``followup report``: a self-contained HTML report from the state store (see docs/report.md)."""

from __future__ import annotations

import shlex
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

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


@click.command()
@click.option(
    "--settings",
    "settings_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="FOLLOWUP_SETTINGS",
    required=True,
    help="The settings file (its store, accounts and policies). Also FOLLOWUP_SETTINGS.",
)
@click.option("--account", default=None, help="Only this account (default: every enabled account).")
@click.option(
    "--since",
    default="30d",
    show_default=True,
    callback=_span,
    help="The period before --now: 30d, 12h, 2d...",
)
@click.option(
    "--now", default=None, callback=_moment, help="ISO date-time the report is as of (default: now)."
)
@click.option(
    "--deal-rows",
    type=click.IntRange(1, 5000),
    default=100,
    show_default=True,
    help="Rows per deal list (every count still covers all deals).",
)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The HTML file to write."
)
def report(
    settings_path: Path, account: str | None, since: timedelta, now: datetime, deal_rows: int, out: Path
) -> None:
    """Write one self-contained HTML report (hygiene, policy activity, enforcement, operations).

    It reads the state store only (no CRM call) and opens offline: charts are inline SVG, the table
    sorter is inlined, nothing is fetched. Exit status 2 for invalid settings or policies.
    """
    from config.settings import read_settings_file

    try:
        from report import ReportRequest, build_page, render_html
    except ImportError as exc:  # the charting packages are an extra
        click.echo(
            f"followup report needs the report extra: pip install 'crm-followup[report]' ({exc.name})",
            err=True,
        )
        sys.exit(2)
    from store import StateStore

    try:
        settings_file = read_settings_file(settings_path)
        sources = account_sources(settings_file, account)
        store = StateStore(settings_file.store_url())
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        sys.exit(2)
    try:
        request = ReportRequest(store, tuple(sources), now - since, now, deal_rows)
        html = render_html(build_page(request))
    finally:
        store.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    size = out.stat().st_size
    click.echo(f"report written: {out.resolve()} ({size / 1024:,.0f} KiB)")
