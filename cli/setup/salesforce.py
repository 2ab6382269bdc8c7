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

from cli.setup import command as shared


def _section(flags: dict[str, Any]) -> dict[str, Any] | None:
    """The ``salesforce:`` options the flags give, or None when they give no way to authenticate."""
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
        return None
    return section


@click.command()
@shared.settings_file_option
@shared.account_option("Salesforce")
@click.option("--instance-url", help="The org's https URL (My Domain, or a sandbox URL for tests).")
@click.option("--login-url", help="Token endpoint host for JWT (default https://login.salesforce.com).")
@click.option("--ca-file", help="CA bundle for a sandbox or a TLS-inspecting proxy.")
@shared.token_options("an access token")
@click.option("--consumer-key", help="Connected app consumer key, for JWT bearer (without --settings).")
@click.option("--username", help="Integration user, for JWT bearer (without --settings).")
@click.option("--private-key-file", help="PEM private key, for JWT bearer (without --settings).")
@shared.policy_option
@shared.dry_run_option
def salesforce(
    settings: Path | None,
    account: str | None,
    policy: Path | None,
    dry_run: bool,
    **flags: Any,
) -> None:
    """Check fields, stages, task statuses and campaigns; create the fields and campaigns the policy needs."""
    shared.run_setup(
        "salesforce",
        settings=settings,
        account=account,
        policy=policy,
        flags_section=_section(flags),
        dry_run=dry_run,
    )
