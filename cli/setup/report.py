"""How ``followup setup hubspot|salesforce`` print what they found, created (or would create) and need."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from connectors.base import SetupReport

__all__ = ["print_setup_report"]


def print_setup_report(report: SetupReport, *, dry_run: bool, api_calls: int, crm_name: str) -> None:
    """One line per finding (problems on stderr), then the API calls made; exit status 1 on a problem."""
    for line in report.ok:
        click.echo(f"ok       {line}")
    for line in report.created:
        click.echo(f"{'plan' if dry_run else 'created':<9}{line}")  # aligned with ok, warning, PROBLEM
    for line in report.warnings:
        click.echo(f"warning  {line}")
    for line in report.problems:
        click.echo(f"PROBLEM  {line}", err=True)
    click.echo(f"{api_calls} {crm_name} API calls{' (dry run: nothing created)' if dry_run else ''}")
    if report.problems:
        raise SystemExit(1)
