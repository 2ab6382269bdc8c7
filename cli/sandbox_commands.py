"""``followup sandbox hubspot|salesforce``: start a local CRM-compatible API server."""

from __future__ import annotations

import click

from cli import LazyGroup


@click.group(
    cls=LazyGroup,
    lazy={
        "hubspot": "cli.sandbox_hubspot:hubspot",
        "salesforce": "cli.sandbox_salesforce:salesforce",
    },
)
def sandbox() -> None:
    """Start a local HubSpot- or Salesforce-compatible API server with seeded data."""
