"""``followup sandbox salesforce``: serve a seeded Salesforce-compatible org over HTTPS until Ctrl-C.

Prints the instance URL, the CA file clients must trust, an access token and the login credentials
(username + consumer key + private key file for JWT bearer; client id/secret for client credentials).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click


@click.command("salesforce")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option(
    "--port", default=8443, show_default=True, type=int, help="Port to listen on (0 = any free port)."
)
@click.option("--seed", default=7, show_default=True, type=int, help="Dataset seed (same seed, same org).")
@click.option("--deals", default=1000, show_default=True, type=int, help="Number of opportunities to seed.")
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
@click.option("--bare", is_flag=True, help="An org where `followup setup salesforce` has not run yet.")
@click.option(
    "--daily-api-limit",
    default=100_000,
    show_default=True,
    type=int,
    help="DailyApiRequests allocation; past it calls get 403 REQUEST_LIMIT_EXCEEDED.",
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
    help="Share of requests that start a storm of 403 REQUEST_LIMIT_EXCEEDED.",
)
@click.option("--storm-length", default=1, show_default=True, type=int, help="Requests each storm lasts.")
@click.option("--drop-rate", default=0.0, show_default=True, type=float, help="Share of connections dropped.")
@click.option("--token-ttl-s", default=None, type=float, help="Access tokens expire this long after issue.")
@click.option(
    "--lock-row-rate",
    default=0.0,
    show_default=True,
    type=float,
    help="Share of writes answered 400 UNABLE_TO_LOCK_ROW.",
)
@click.option("--fault-seed", default=0, show_default=True, type=int, help="Seed of the fault sequence.")
@click.option("--no-metadata-api", is_flag=True, help="Answer the Metadata API (SOAP) with 404.")
def salesforce(
    host: str,
    port: int,
    seed: int,
    deals: int,
    data_dir: Path | None,
    now_text: str | None,
    bare: bool,
    daily_api_limit: int,
    error_rate: float,
    latency_ms: float,
    rate_limit_storm: float,
    storm_length: int,
    drop_rate: float,
    token_ttl_s: float | None,
    lock_row_rate: float,
    fault_seed: int,
    no_metadata_api: bool,
) -> None:
    """Serve a Salesforce-compatible REST API (HTTPS) with a seeded org: SOQL, sObjects, OAuth, limits."""
    from sandbox.clock import SandboxClock
    from sandbox.dataset import generate, generate_or_load
    from sandbox.faults import FaultConfig
    from sandbox.salesforce.app import build_app
    from sandbox.salesforce.running import build_org, default_now
    from sandbox.salesforce.tls import make_tls_files
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
    if not 0.0 <= lock_row_rate <= 1.0:
        raise click.BadParameter("must be between 0 and 1", param_hint="--lock-row-rate")
    dataset_now = now or default_now()
    click.echo(f"Seeding {deals} opportunities (seed {seed})...", err=True)
    dataset = (
        generate_or_load(seed, deals, dataset_now, data_dir)
        if data_dir
        else generate(seed, deals, dataset_now)
    )
    clock = SandboxClock()
    if now is not None:
        clock.set(now, ticking=True)
    org = build_org(
        dataset,
        clock=clock,
        faults=faults,
        bare=bare,
        daily_api_limit=daily_api_limit,
        unable_to_lock_row_rate=lock_row_rate,
    )
    org.metadata_api = not no_metadata_api
    hosts = tuple(dict.fromkeys((host, "127.0.0.1", "localhost")))
    tls = make_tls_files(hosts)
    key_file = tls.directory / "jwt-private-key.pem"
    key_file.touch(mode=0o600)
    key_file.write_text(org.credentials.private_key_pem)
    token = org.issue_token()
    creds = org.credentials

    def started(server: RunningServer) -> None:
        org.instance_url = server.base_url
        click.echo(f"Salesforce sandbox on {server.base_url}  (Ctrl-C stops it)")
        click.echo(f"  CA file (trust it):   {tls.ca_file}")
        click.echo(f"  access token:         {token}")
        click.echo(f"  username:             {creds.username}")
        click.echo(f"  consumer key (JWT):   {creds.consumer_key}")
        click.echo(f"  private key (JWT):    {key_file}")
        click.echo(f"  client id / secret:   {creds.client_id} / {creds.client_secret}")
        click.echo(f"  password (legacy):    {creds.password}")
        click.echo("  python: s = requests.Session(); s.verify = CA_FILE; s.trust_env = False")
        click.echo(f'          Salesforce(instance_url="{server.base_url}", session_id=TOKEN, session=s)')
        click.echo(f"  introspection: {server.base_url}/__sandbox__/stats")

    try:
        serve_forever(
            build_app(org),
            host=host,
            port=port,
            ssl_certfile=tls.cert_file,
            ssl_keyfile=tls.key_file,
            on_started=started,
        )
    finally:
        tls.cleanup()
