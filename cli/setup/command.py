"""What ``followup setup hubspot`` and ``followup setup salesforce`` share: where the account comes from,
the connector built by the worker, and the run.

With ``--settings`` the account is loaded by the worker as a run loads it (``worker.load_accounts``): a
problem in the settings file, the connector section, the schedule or the policy is reported as
``file:line:col: path.to.key: message``, exactly as ``followup run`` reports it. Without a settings file the
connector section comes from the command's flags. Either way the connector is built where every connector
is built (``worker.connector_for``) and checks and prepares its CRM (``connector.setup``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from cli.setup.report import print_setup_report

if TYPE_CHECKING:
    from policies.policy import PolicyRequirements

__all__ = [
    "account_option",
    "dry_run_option",
    "policy_option",
    "run_setup",
    "settings_file_option",
    "token_options",
]

settings_file_option = click.option(
    "--settings",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The worker's settings file.",
)
dry_run_option = click.option("--dry-run", is_flag=True, help="Report what would be created; create nothing.")


_Command = TypeVar("_Command", bound=Callable[..., Any])


def account_option(crm: str) -> Callable[[_Command], _Command]:
    """``--account``: which account of the settings file, for ``crm`` (HubSpot, Salesforce)."""
    return click.option(
        "--account", help=f"Which {crm} account of the settings file (needed when there are several)."
    )


def token_options(token: str) -> Callable[[_Command], _Command]:
    """``--token-env`` and ``--token-file``: where ``token`` ("an access token") is, without --settings."""

    def add(func: _Command) -> _Command:
        func = click.option("--token-file", help=f"File holding {token} (without --settings).")(func)
        return click.option(
            "--token-env", help=f"Environment variable holding {token} (without --settings)."
        )(func)

    return add


policy_option = click.option(
    "--policy",
    type=click.Path(exists=True, path_type=Path),
    help="Policy file or folder (default: the account's policy in --settings).",
)

CRM_NAMES = {"hubspot": "HubSpot", "salesforce": "Salesforce"}


def run_setup(
    crm: str,
    *,
    settings: Path | None,
    account: str | None,
    policy: Path | None,
    flags_section: dict[str, Any] | None,
    dry_run: bool,
) -> None:
    """Check the CRM of the account (``settings``/``account``) or of the flags against the policy, create
    what is missing unless ``dry_run``, print the report; exit status 1 when a human must act."""
    import worker
    from connectors.base import SetupNeeds
    from connectors.errors import CrmError

    with _reported_as_click_errors(crm):
        options, requirements = _account(crm, settings, account, policy, flags_section)
    needs = SetupNeeds(requirements.stages, requirements.nurture_names, requirements.deal_fields)
    try:
        connector = worker.connector_for(crm, options)
        try:
            report = connector.setup(needs, dry_run=dry_run)
        finally:
            connector.close()
    except CrmError as exc:
        raise click.ClickException(str(exc)) from None
    print_setup_report(report, dry_run=dry_run, api_calls=connector.usage().calls, crm_name=CRM_NAMES[crm])


def _account(
    crm: str,
    settings: Path | None,
    account: str | None,
    policy: Path | None,
    flags_section: dict[str, Any] | None,
) -> tuple[Any, PolicyRequirements]:
    """The connector options and the policy's requirements, from the settings file or from the flags."""
    import worker
    from config.settings import read_settings_file
    from policies.loader import load_policy

    if settings is None:
        if policy is None or flags_section is None:
            raise click.UsageError(_USAGE[crm])
        options = worker.options_model(crm).model_validate(flags_section)
        return options, load_policy(policy).requirements()
    loaded = read_settings_file(settings)
    names = [n for n, a in loaded.settings.accounts.items() if a.crm == crm]
    if account is None:
        if len(names) != 1:
            raise click.UsageError(
                f"{settings} has {len(names)} {CRM_NAMES[crm]} accounts; choose one with --account "
                f"({', '.join(names) or 'none'})"
            )
        account = names[0]
    if account not in names:
        raise click.UsageError(f"{settings} has no {CRM_NAMES[crm]} account {account!r}")
    runtime = worker.load_accounts(loaded, account)[0]
    chosen = load_policy(policy) if policy is not None else runtime.policy
    return runtime.options, chosen.requirements()


_USAGE = {
    "hubspot": "give --settings FILE, or --policy PATH with --token-env VAR or --token-file FILE",
    "salesforce": (
        "give --settings FILE, or --policy PATH with --token-env/--token-file, or --consumer-key, "
        "--username and --private-key-file (JWT bearer)"
    ),
}


@contextmanager
def _reported_as_click_errors(section_name: str) -> Iterator[None]:
    """Located settings and policy problems, and invalid flags, as one click error each."""
    from pydantic import ValidationError

    from config.errors import ConfigError

    try:
        yield
    except ConfigError as exc:
        raise click.ClickException("\n".join(exc.problems)) from None
    except ValidationError as exc:  # options from flags: no file to locate them in
        lines = [f"{section_name}.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise click.ClickException("\n".join(lines)) from None
