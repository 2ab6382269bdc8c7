"""``followup setup hubspot``: check a HubSpot portal against the policies and create what is missing.

The portal and the policy come from the worker's settings file (``--settings``, optionally ``--account``),
or, without one, from ``--token-env``/``--token-file`` + ``--host`` + ``--policy``. ``--dry-run`` reports
what would be created and creates nothing. Exit status 1 when something needs a human.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


def _connector_settings(
    settings: Path | None,
    account: str | None,
    token_env: str | None,
    token_file: str | None,
    host: str | None,
    policy: Path | None,
) -> tuple[dict[str, Any], Path]:
    """The ``hubspot:`` options and the policy path, from the settings file or from the flags."""
    if settings is not None:
        from config.settings import read_settings_file

        loaded = read_settings_file(settings)
        hubspot_accounts = [n for n, a in loaded.settings.accounts.items() if a.crm == "hubspot"]
        if account is None:
            if len(hubspot_accounts) != 1:
                raise click.UsageError(
                    f"{settings} has {len(hubspot_accounts)} HubSpot accounts; choose one with --account "
                    f"({', '.join(hubspot_accounts) or 'none'})"
                )
            account = hubspot_accounts[0]
        if account not in hubspot_accounts:
            raise click.UsageError(f"{settings} has no HubSpot account {account!r}")
        return dict(loaded.settings.accounts[account].connector_section), policy or loaded.policy_path(
            account
        )
    if policy is None or not (token_env or token_file):
        raise click.UsageError(
            "give --settings FILE, or --policy PATH with --token-env VAR or --token-file FILE"
        )
    section: dict[str, Any] = (
        {"access_token_env": token_env} if token_env else {"access_token_file": token_file}
    )
    if host:
        section["host"] = host
    return section, policy


@click.command()
@click.option(
    "--settings",
    "settings",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The worker's settings file.",
)
@click.option("--account", help="Which HubSpot account of the settings file (needed when there are several).")
@click.option(
    "--token-env", help="Environment variable holding a private app access token (without --settings)."
)
@click.option("--token-file", help="File holding a private app access token (without --settings).")
@click.option("--host", help="API host (default https://api.hubapi.com; a sandbox URL for tests).")
@click.option(
    "--policy",
    type=click.Path(exists=True, path_type=Path),
    help="Policy file or folder (without --settings).",
)
@click.option("--dry-run", is_flag=True, help="Report what would be created; create nothing.")
def hubspot(
    settings: Path | None,
    account: str | None,
    token_env: str | None,
    token_file: str | None,
    host: str | None,
    policy: Path | None,
    dry_run: bool,
) -> None:
    """Check scopes, stages and labels; create the deal properties and nurture lists the policies need."""
    from pydantic import ValidationError

    from config.errors import ConfigError
    from connectors.errors import CrmError
    from connectors.hubspot import HubSpotOptions, build_hubspot_connector
    from connectors.hubspot.setup import needs_from, run_setup
    from policies.loader import load_policy

    try:
        section, policy_path = _connector_settings(settings, account, token_env, token_file, host, policy)
        options = HubSpotOptions.model_validate(section)
        requirements = load_policy(policy_path).requirements()
    except ConfigError as exc:
        raise click.ClickException("\n".join(exc.problems)) from None
    except ValidationError as exc:
        lines = [f"hubspot.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise click.ClickException("\n".join(lines)) from None
    needs = needs_from(requirements.stages, requirements.nurture_names, requirements.deal_fields)
    try:
        connector = build_hubspot_connector(options)
        try:
            report = run_setup(connector.client, options, needs, dry_run=dry_run)
        finally:
            connector.close()
    except CrmError as exc:
        raise click.ClickException(str(exc)) from None
    for line in report.ok:
        click.echo(f"ok       {line}")
    for line in report.created:
        click.echo(f"{'plan' if dry_run else 'created'}  {line}")
    for line in report.warnings:
        click.echo(f"warning  {line}")
    for line in report.problems:
        click.echo(f"PROBLEM  {line}", err=True)
    usage = connector.usage()
    click.echo(f"{usage.calls} HubSpot API calls{' (dry run: nothing created)' if dry_run else ''}")
    if report.problems:
        raise SystemExit(1)
