"""``followup setup hubspot``: check a HubSpot portal against the policies and create what is missing.

The portal and the policy come from the worker's settings file (``--settings``, optionally ``--account``),
or, without one, from ``--token-env``/``--token-file`` + ``--host`` + ``--policy``. ``--dry-run`` reports
what would be created and creates nothing. Exit status 1 when something needs a human.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cli.setup import command as shared


@click.command()
@shared.settings_file_option
@shared.account_option("HubSpot")
@shared.token_options("a private app access token")
@click.option("--host", help="API host (default https://api.hubapi.com; a sandbox URL for tests).")
@shared.policy_option
@shared.dry_run_option
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
    section: dict[str, Any] | None = None
    if token_env or token_file:
        section = {"access_token_env": token_env} if token_env else {"access_token_file": token_file}
        if host:
            section["host"] = host
    shared.run_setup(
        "hubspot", settings=settings, account=account, policy=policy, flags_section=section, dry_run=dry_run
    )
