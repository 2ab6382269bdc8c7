"""``followup setup hubspot|salesforce``: create in the CRM what the policies need."""

from __future__ import annotations

import click

from cli import LazyGroup


@click.group(
    cls=LazyGroup,
    lazy={
        "hubspot": "cli.setup_hubspot:hubspot",
        "salesforce": "cli.setup_salesforce:salesforce",
    },
)
def setup() -> None:
    """Check the CRM against the policies and create the missing fields, lists and campaigns."""
