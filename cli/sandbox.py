"""``followup sandbox hubspot|salesforce``: the bundled CRM sandboxes, from the separate crm-sandbox package.

The sandbox is its own distribution (``sandbox/``, import package ``crm_sandbox``, command ``crm-sandbox``);
crm-followup installs it with its ``demo`` and ``dev`` extras. This command is that package's command group.
"""

from __future__ import annotations

import click

INSTALL_HINT = (
    "the CRM sandboxes are not installed: install them with `pip install -e ./sandbox` in a checkout "
    "(./scripts/demo does), or `pip install 'crm-followup[demo]'`"
)


class SandboxGroup(click.Group):
    """Delegates to ``crm_sandbox.cli``, imported only when the command is used."""

    def _group(self) -> click.Group:
        try:
            from crm_sandbox.cli import main
        except ModuleNotFoundError as exc:
            if exc.name is None or not exc.name.startswith("crm_sandbox"):
                raise
            raise click.UsageError(INSTALL_HINT) from None
        return main

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self._group().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._group().get_command(ctx, cmd_name)


@click.group(cls=SandboxGroup)
def sandbox() -> None:
    """Start a local HubSpot- or Salesforce-compatible API server with seeded data (crm-sandbox)."""
