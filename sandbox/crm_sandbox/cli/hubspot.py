"""``crm-sandbox hubspot`` (or ``followup sandbox hubspot``): serve a seeded HubSpot portal until Ctrl-C.

Point the official client at it with ``HubSpot(access_token=<printed token>, host=<printed URL>)``.
"""

from __future__ import annotations

from dataclasses import replace

import click
from crm_sandbox.cli.options import DatasetFlags, FaultFlags, dataset_options, fault_options


@click.command("hubspot")
@dataset_options(default_port=8011, world="portal", records="deals")
@click.option("--bare", is_flag=True, help="A portal where `followup setup hubspot` has not run yet.")
@click.option("--token", default=None, help="Access token clients must send (default: printed at start).")
@click.option(
    "--tier",
    type=click.Choice(["free", "starter", "professional", "enterprise"]),
    default="professional",
    show_default=True,
    help="HubSpot tier whose API limits apply.",
)
@click.option("--no-rate-limits", is_flag=True, help="Switch the 10-second, daily and search limits off.")
@click.option(
    "--search-lag-ms",
    default=0,
    show_default=True,
    type=int,
    help="Records changed this recently are not yet visible to search.",
)
@click.option(
    "--retry-after",
    "retry_after",
    default=None,
    type=click.IntRange(min=0),
    help=(
        "Send 'Retry-After: SECONDS' with every 429 (rate limits and injected storms). "
        "HubSpot's documentation does not list the header; off by default."
    ),
)
@fault_options(
    storm_help="Share of requests that start a storm of 429s.",
    storm_length_help="Requests each 429 storm lasts.",
    expiry_help="Tokens expire this long after start.",
)
def hubspot(
    host: str,
    port: int,
    seeding: DatasetFlags,
    bare: bool,
    token: str | None,
    tier: str,
    no_rate_limits: bool,
    search_lag_ms: int,
    retry_after: int | None,
    fault_flags: FaultFlags,
) -> None:
    """Serve a HubSpot-compatible API with a seeded portal (CRM v3 objects, search, v4 associations, ...)."""
    from crm_sandbox.hubspot import RateLimitConfig, build_portal
    from crm_sandbox.server import RunningServer, serve_forever

    now = seeding.now()
    faults = replace(fault_flags.config(), retry_after_s=retry_after)
    dataset, clock = seeding.seed_sandbox(now, records="deals")
    limits = RateLimitConfig.off() if no_rate_limits else RateLimitConfig.tier(tier)
    limits = limits.with_(retry_after_s=retry_after)
    portal = build_portal(
        dataset,
        clock=clock,
        bare=bare,
        rate_limits=limits,
        faults=faults,
        search_lag_ms=search_lag_ms,
        access_token=token,
    )

    def announce(server: RunningServer) -> None:
        click.echo(f"HubSpot sandbox on {server.base_url}  (Ctrl-C stops it)")
        click.echo(f"  access token: {portal.access_token}")
        click.echo(f'  python: HubSpot(access_token="{portal.access_token}", host="{server.base_url}")')
        click.echo(f"  introspection: {server.base_url}/__sandbox__/stats", nl=True)

    serve_forever(portal.app, host=host, port=port, on_started=announce)
