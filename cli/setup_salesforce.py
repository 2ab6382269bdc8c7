"""``followup setup salesforce``: check a Salesforce org against the policy and create what is missing.

The org and the policy come from the worker's settings file (``--settings``, optionally ``--account``), or,
without one, from flags: ``--instance-url`` and either ``--token-env``/``--token-file`` (an access token)
or ``--consumer-key`` + ``--username`` + ``--private-key-file`` (JWT bearer), plus ``--policy``.
``--dry-run`` reports what would be created and creates nothing. Exit status 1 when something needs a
human (a stage to add, a field to create by hand, access to grant).
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


def _salesforce_section(
    settings: Path | None,
    account: str | None,
    flags: dict[str, Any],
    policy: Path | None,
) -> tuple[dict[str, Any], Path]:
    """The ``salesforce:`` options and the policy path, from the settings file or from the flags."""
    if settings is not None:
        return account_from_settings(settings, account, policy, crm="salesforce", crm_name="Salesforce")
    if policy is None:
        raise click.UsageError("give --settings FILE, or --policy PATH with the connection flags")
    section: dict[str, Any] = {}
    for key in ("instance_url", "login_url", "ca_file"):
        if flags.get(key):
            section[key] = flags[key]
    if flags.get("token_env") or flags.get("token_file"):
        source = "access_token_env" if flags.get("token_env") else "access_token_file"
        section["auth"] = {"kind": "access_token", source: flags.get("token_env") or flags.get("token_file")}
    elif flags.get("consumer_key") and flags.get("username") and flags.get("private_key_file"):
        section["auth"] = {
            "kind": "jwt_bearer",
            "consumer_key": flags["consumer_key"],
            "username": flags["username"],
            "private_key_file": flags["private_key_file"],
        }
    else:
        raise click.UsageError(
            "without --settings give --token-env/--token-file, or --consumer-key, --username and "
            "--private-key-file (JWT bearer)"
        )
    return section, policy


@click.command()
@settings_file_option
@click.option(
    "--account", help="Which Salesforce account of the settings file (needed when there are several)."
)
@click.option("--instance-url", help="The org's https URL (My Domain, or a sandbox URL for tests).")
@click.option("--login-url", help="Token endpoint host for JWT (default https://login.salesforce.com).")
@click.option("--ca-file", help="CA bundle for a sandbox or a TLS-inspecting proxy.")
@click.option("--token-env", help="Environment variable holding an access token (without --settings).")
@click.option("--token-file", help="File holding an access token (without --settings).")
@click.option("--consumer-key", help="Connected app consumer key, for JWT bearer (without --settings).")
@click.option("--username", help="Integration user, for JWT bearer (without --settings).")
@click.option("--private-key-file", help="PEM private key, for JWT bearer (without --settings).")
@click.option(
    "--policy",
    type=click.Path(exists=True, path_type=Path),
    help="Policy file or folder (default: the account's policy in --settings).",
)
@dry_run_option
def salesforce(
    settings: Path | None,
    account: str | None,
    policy: Path | None,
    dry_run: bool,
    **flags: Any,
) -> None:
    """Check fields, stages, task statuses and campaigns; create the fields and campaigns the policy needs."""
    from connectors.errors import CrmError
    from connectors.salesforce import SalesforceOptions, build_salesforce_connector
    from connectors.salesforce.setup import needs_from, run_setup
    from policies.loader import load_policy

    with reported_as_click_errors("salesforce"):
        section, policy_path = _salesforce_section(settings, account, flags, policy)
        options = SalesforceOptions.model_validate(section)
        requirements = load_policy(policy_path).requirements()
    needs = needs_from(options, requirements.stages, requirements.nurture_names, requirements.deal_fields)
    connector = build_salesforce_connector(options)
    try:
        report = run_setup(connector.api, options, needs, dry_run=dry_run)
    except CrmError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        connector.close()
    print_setup_report(report, dry_run=dry_run, api_calls=connector.usage().calls, crm_name="Salesforce")
