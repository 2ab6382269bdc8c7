"""``crm-sandbox salesforce`` (or ``followup sandbox salesforce``): a seeded org over HTTPS until Ctrl-C.

Prints the instance URL, the CA file clients must trust, an access token and the login credentials
(username + consumer key + private key file for JWT bearer; client id/secret for client credentials).
"""

from __future__ import annotations

import click
from crm_sandbox.cli.options import DatasetFlags, FaultFlags, dataset_options, fault_options


@click.command("salesforce")
@dataset_options(default_port=8443, world="org", records="opportunities")
@click.option("--bare", is_flag=True, help="An org where `followup setup salesforce` has not run yet.")
@click.option(
    "--daily-api-limit",
    default=100_000,
    show_default=True,
    type=int,
    help="DailyApiRequests allocation; past it calls get 403 REQUEST_LIMIT_EXCEEDED.",
)
@fault_options(
    storm_help="Share of requests that start a storm of 403 REQUEST_LIMIT_EXCEEDED.",
    storm_length_help="Requests each storm lasts.",
    expiry_help="Access tokens expire this long after issue.",
    before_fault_seed=[
        click.option(
            "--lock-row-rate",
            default=0.0,
            show_default=True,
            type=float,
            help="Share of writes answered 400 UNABLE_TO_LOCK_ROW.",
        )
    ],
)
@click.option("--no-metadata-api", is_flag=True, help="Answer the Metadata API (SOAP) with 404.")
def salesforce(
    host: str,
    port: int,
    seeding: DatasetFlags,
    bare: bool,
    daily_api_limit: int,
    fault_flags: FaultFlags,
    lock_row_rate: float,
    no_metadata_api: bool,
) -> None:
    """Serve a Salesforce-compatible REST API (HTTPS) with a seeded org: SOQL, sObjects, OAuth, limits."""
    from crm_sandbox.salesforce.app import build_app
    from crm_sandbox.salesforce.running import build_org, write_private_key_file
    from crm_sandbox.salesforce.tls import make_tls_files
    from crm_sandbox.server import RunningServer, serve_forever

    now = seeding.now()
    faults = fault_flags.config()
    if not 0.0 <= lock_row_rate <= 1.0:
        raise click.BadParameter("must be between 0 and 1", param_hint="--lock-row-rate")
    dataset, clock = seeding.seed_sandbox(now, records="opportunities")
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
    key_file = write_private_key_file(org, tls.directory)
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
