"""The ``followup`` command line. Each command lives in a small module and is imported only when used.

followup validate | schema | plan | explain       policies (cli/policy_commands.py)
followup backtest                                 replay policies over a pipeline's history (cli/backtest.py)
followup sandbox hubspot | salesforce             the crm-sandbox servers (cli/sandbox.py)
followup setup hubspot | salesforce               create what the policies need in the CRM
followup run | serve | demo                       the worker (cli/run_commands.py)
followup report                                   an HTML report from the state store (cli/report_command.py)
"""

from __future__ import annotations

import importlib
import sys

import click

# command name -> "module:attribute" of a click.Command
COMMANDS: dict[str, str] = {
    "validate": "cli.policy_commands:validate",
    "schema": "cli.policy_commands:schema",
    "plan": "cli.policy_commands:plan",
    "explain": "cli.policy_commands:explain",
    "backtest": "cli.backtest:backtest",
    "sandbox": "cli.sandbox:sandbox",
    "setup": "cli.setup:setup",
    "run": "cli.run_commands:run",
    "serve": "cli.run_commands:serve",
    "demo": "cli.run_commands:demo",
    "report": "cli.report_command:report",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use, so ``followup --help`` stays fast."""

    def __init__(self, *args: object, lazy: dict[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module_name, attr = self.lazy[cmd_name].split(":")
            command = getattr(importlib.import_module(module_name), attr)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="crm-followup")
def main() -> None:
    """crm-followup: follow-up policies for HubSpot and Salesforce deals, applied on a schedule."""


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
