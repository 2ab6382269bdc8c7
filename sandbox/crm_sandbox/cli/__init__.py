"""The ``crm-sandbox`` command: ``crm-sandbox hubspot`` and ``crm-sandbox salesforce``.

The same group is what ``followup sandbox`` runs when crm-followup's demo or dev extra is installed.
"""

from __future__ import annotations

import click
from crm_sandbox.cli.hubspot import hubspot
from crm_sandbox.cli.salesforce import salesforce


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="crm-sandbox")
def main() -> None:
    """Start a local HubSpot- or Salesforce-compatible API server with seeded data."""


main.add_command(hubspot)
main.add_command(salesforce)
