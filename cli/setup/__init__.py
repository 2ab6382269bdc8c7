"""``followup setup hubspot|salesforce``: create in the CRM what the policies need.

hubspot.py, salesforce.py   the two commands (their flags)
command.py                  what they share: the account (through the worker), the connector, the run
report.py                   how the findings are printed
"""

from __future__ import annotations

import click

from cli import LazyGroup


@click.group(
    cls=LazyGroup,
    lazy={
        "hubspot": "cli.setup.hubspot:hubspot",
        "salesforce": "cli.setup.salesforce:salesforce",
    },
)
def setup() -> None:
    """Check the CRM against the policies and create the missing fields, lists and campaigns."""
