"""How ``followup setup hubspot|salesforce`` print what they found, created (or would create) and need."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import click

__all__ = ["SetupOutcome", "print_setup_report"]


class SetupOutcome(Protocol):
    """What either CRM's ``run_setup`` reports."""

    @property
    def ok(self) -> Sequence[str]: ...
    @property
    def created(self) -> Sequence[str]: ...
    @property
    def warnings(self) -> Sequence[str]: ...
    @property
    def problems(self) -> Sequence[str]: ...


def print_setup_report(report: SetupOutcome, *, dry_run: bool, api_calls: int, crm_name: str) -> None:
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
