"""Where ``followup setup hubspot|salesforce`` get the connector options and the policy.

``account_from_settings`` picks the account of the worker's settings file (``--settings``/``--account``)
and returns its connector section and policy path; ``reported_as_click_errors`` turns settings, option
and policy errors into the messages the commands print. ``settings_file_option`` and ``dry_run_option``
are the options both commands take as they are.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

__all__ = ["account_from_settings", "dry_run_option", "reported_as_click_errors", "settings_file_option"]

settings_file_option = click.option(
    "--settings",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The worker's settings file.",
)
dry_run_option = click.option("--dry-run", is_flag=True, help="Report what would be created; create nothing.")


def account_from_settings(
    settings: Path, account: str | None, policy: Path | None, *, crm: str, crm_name: str
) -> tuple[dict[str, Any], Path]:
    """The connector section of the ``crm`` account (the only one unless ``account`` names it) and the
    policy path (``policy`` when given, else the account's); ``crm_name`` is how messages spell the CRM."""
    from config.settings import read_settings_file

    loaded = read_settings_file(settings)
    names = [n for n, a in loaded.settings.accounts.items() if a.crm == crm]
    if account is None:
        if len(names) != 1:
            raise click.UsageError(
                f"{settings} has {len(names)} {crm_name} accounts; choose one with --account "
                f"({', '.join(names) or 'none'})"
            )
        account = names[0]
    if account not in names:
        raise click.UsageError(f"{settings} has no {crm_name} account {account!r}")
    return dict(loaded.settings.accounts[account].connector_section), policy or loaded.policy_path(account)


@contextmanager
def reported_as_click_errors(section_name: str) -> Iterator[None]:
    """Settings and policy problems, and invalid ``section_name:`` options, as one click error each."""
    from pydantic import ValidationError

    from config.errors import ConfigError

    try:
        yield
    except ConfigError as exc:
        raise click.ClickException("\n".join(exc.problems)) from None
    except ValidationError as exc:
        lines = [f"{section_name}.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise click.ClickException("\n".join(lines)) from None
