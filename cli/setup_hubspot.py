"""``followup setup hubspot``: check a HubSpot portal against the policies and create what is missing.

The portal and the policy come from the worker's settings file (``--settings``, optionally ``--account``),
or, without one, from ``--token-env``/``--token-file`` + ``--host`` + ``--policy``. ``--dry-run`` reports
what would be created and creates nothing. Exit status 1 when something needs a human.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cli.setup_report import print_setup_report
from cli.setup_settings import (
    account_from_settings,
    dry_run_option,
    reported_as_click_errors,
    settings_file_option,
)


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
        return account_from_settings(settings, account, policy, crm="hubspot", crm_name="HubSpot")
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
@settings_file_option
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
@dry_run_option
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
    from connectors.errors import CrmError
    from connectors.hubspot import HubSpotOptions, build_hubspot_connector
    from connectors.hubspot.setup import needs_from, run_setup
    from policies.loader import load_policy

    with reported_as_click_errors("hubspot"):
        section, policy_path = _connector_settings(settings, account, token_env, token_file, host, policy)
        options = HubSpotOptions.model_validate(section)
        requirements = load_policy(policy_path).requirements()
    needs = needs_from(requirements.stages, requirements.nurture_names, requirements.deal_fields)
    try:
        connector = build_hubspot_connector(options)
        try:
            report = run_setup(connector.client, options, needs, dry_run=dry_run)
        finally:
            connector.close()
    except CrmError as exc:
        raise click.ClickException(str(exc)) from None
    print_setup_report(report, dry_run=dry_run, api_calls=connector.usage().calls, crm_name="HubSpot")
