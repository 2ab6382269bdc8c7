"""``followup sandbox hubspot``: serve a seeded HubSpot-compatible portal until Ctrl-C.

Point the official client at it with ``HubSpot(access_token=<printed token>, host=<printed URL>)``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click


@click.command("hubspot")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option(
    "--port", default=8011, show_default=True, type=int, help="Port to listen on (0 = any free port)."
)
@click.option("--seed", default=7, show_default=True, type=int, help="Dataset seed (same seed, same portal).")
@click.option("--deals", default=1000, show_default=True, type=int, help="Number of deals to seed.")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Cache directory: load the dataset from here if saved before, else generate and save it.",
)
@click.option(
    "--now", "now_text", default=None, help="The dataset's 'now' (ISO 8601); the clock starts there."
)
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
    "--error-rate", default=0.0, show_default=True, type=float, help="Share of requests answered 5xx."
)
@click.option(
    "--latency-ms", default=0.0, show_default=True, type=float, help="Latency added to every request."
)
@click.option(
    "--rate-limit-storm",
    default=0.0,
    show_default=True,
    type=float,
    help="Share of requests that start a storm of 429s.",
)
@click.option("--storm-length", default=1, show_default=True, type=int, help="Requests each 429 storm lasts.")
@click.option("--drop-rate", default=0.0, show_default=True, type=float, help="Share of connections dropped.")
@click.option("--token-ttl-s", default=None, type=float, help="Tokens expire this long after start.")
@click.option("--fault-seed", default=0, show_default=True, type=int, help="Seed of the fault sequence.")
def hubspot(
    host: str,
    port: int,
    seed: int,
    deals: int,
    data_dir: Path | None,
    now_text: str | None,
    bare: bool,
    token: str | None,
    tier: str,
    no_rate_limits: bool,
    search_lag_ms: int,
    error_rate: float,
    latency_ms: float,
    rate_limit_storm: float,
    storm_length: int,
    drop_rate: float,
    token_ttl_s: float | None,
    fault_seed: int,
) -> None:
    """Serve a HubSpot-compatible API with a seeded portal (CRM v3 objects, search, v4 associations, ...)."""
    from sandbox.clock import SandboxClock
    from sandbox.dataset import generate, generate_or_load
    from sandbox.faults import FaultConfig
    from sandbox.hubspot import RateLimitConfig, build_portal
    from sandbox.hubspot.running import default_now
    from sandbox.server import RunningServer, serve_forever

    try:
        now = datetime.fromisoformat(now_text) if now_text else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--now") from None
    if now is not None and now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    try:
        faults = FaultConfig(
            error_rate=error_rate,
            latency_ms=latency_ms,
            rate_limit_storm=rate_limit_storm,
            rate_limit_burst=storm_length,
            drop_rate=drop_rate,
            token_ttl_s=token_ttl_s,
            seed=fault_seed,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    dataset_now = now or default_now()
    click.echo(f"Seeding {deals} deals (seed {seed})...", err=True)
    dataset = (
        generate_or_load(seed, deals, dataset_now, data_dir)
        if data_dir
        else generate(seed, deals, dataset_now)
    )
    clock = SandboxClock()
    if now is not None:
        clock.set(now, ticking=True)
    limits = RateLimitConfig.off() if no_rate_limits else RateLimitConfig.tier(tier)
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
