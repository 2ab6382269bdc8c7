"""Many Salesforce orgs behind one HTTPS server (``crm-sandbox salesforce --orgs N``), for fleets of accounts.

Org ``n`` is the org ``running_salesforce_sandbox(seed=seed + n, ...)`` would serve: its own data, org id
(``00D`` number ``n + 1``; its session ids start with it), API user
``integration@org{n}.crm-followup.sandbox``, rolling daily API budget, faults (fault seed + n) and stats.
The orgs share one connected app, as an ISV's app installed in many orgs does: one consumer key, one JWT
key pair, one client id and secret; the username in a login says which org it is for. A request reaches
its org as a real one would reach it:

* by the session id it carries (``Authorization: Bearer 00D...``; the Metadata API's ``sessionId``);
* for a login (``POST /services/oauth2/token``), by the username: the JWT assertion's ``sub``, or the
  password flow's ``username``;
* under ``/orgs/{n}/``, the org's own URL (a stand-in for its My Domain): the client-credentials flow,
  which names no user, logs in there. simple-salesforce keeps only the host of an instance URL, so API
  calls go to the root with the session id, which routes them.

Orgs are built on first use. Introspection per org under ``/__sandbox__/orgs/{n}/`` (including the
Salesforce-only routes, e.g. ``/__sandbox__/orgs/3/salesforce/api-usage``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jwt
from crm_sandbox.clock import SandboxClock
from crm_sandbox.control_client import SandboxControl
from crm_sandbox.dataset import generate, generate_or_load
from crm_sandbox.faults import FaultConfig
from crm_sandbox.salesforce.app import build_app
from crm_sandbox.salesforce.errors import invalid_session
from crm_sandbox.salesforce.ids import make_id
from crm_sandbox.salesforce.oauth import Credentials, make_credentials
from crm_sandbox.salesforce.org import DEFAULT_DAILY_API_LIMIT, SalesforceOrg
from crm_sandbox.salesforce.running import build_org
from crm_sandbox.salesforce.tls import make_tls_files
from crm_sandbox.seeding import default_now
from crm_sandbox.server import serve_in_thread
from crm_sandbox.tenants import Routed, TenantServer, TenantSpec
from starlette.responses import JSONResponse, Response
from starlette.types import Scope

__all__ = ["SalesforceFleet", "fleet_username", "running_salesforce_fleet", "salesforce_fleet"]

TOKEN_PATH = "/services/oauth2/token"  # noqa: S105 - a URL path, not a secret
_ORG_PATH = re.compile(r"^/orgs/(\d+)(/.*)$")
_SESSION_ID = re.compile(rb"<(?:\w+:)?sessionId>([^<]+)</")


def fleet_username(n: int) -> str:
    """The API user of org ``n`` of a fleet."""
    return f"integration@org{n}.crm-followup.sandbox"


class OrgFleet(TenantServer[SalesforceOrg]):
    """The multi-org server, and the connected app every org trusts (what a client logs in with)."""

    def __init__(
        self,
        spec: TenantSpec[SalesforceOrg],
        clock: SandboxClock,
        faults: FaultConfig | None,
        connected_app: Credentials,
    ) -> None:
        super().__init__(spec, clock, faults)
        self.connected_app = connected_app
        self.instance_url = ""  # set once the server listens; the orgs answer it in their token responses


def salesforce_fleet(
    *,
    orgs: int,
    deals: int,
    seed: int = 7,
    now: datetime | None = None,
    clock: SandboxClock | None = None,
    bare: bool = False,
    faults: FaultConfig | None = None,
    daily_api_limit: int = DEFAULT_DAILY_API_LIMIT,
    unable_to_lock_row_rate: float = 0.0,
    data_dir: Path | None = None,
) -> OrgFleet:
    """The ASGI app of ``orgs`` orgs of ``deals`` opportunities each; org ``n`` is seeded ``seed + n``."""
    dataset_now = now or default_now()
    clock = clock or SandboxClock()
    if now is not None and clock.is_real:
        clock.set(now, ticking=True)
    connected_app = make_credentials(fleet_username(0))
    org_ids = {make_id("00D", n + 1)[:15]: n for n in range(orgs)}
    usernames = {fleet_username(n): n for n in range(orgs)}
    server: OrgFleet

    def build(n: int) -> SalesforceOrg:
        dataset = (
            generate_or_load(seed + n, deals, dataset_now, data_dir)
            if data_dir
            else generate(seed + n, deals, dataset_now)
        )
        org = build_org(
            dataset,
            clock=clock,
            bare=bare,
            daily_api_limit=daily_api_limit,
            unable_to_lock_row_rate=unable_to_lock_row_rate,
            number=n + 1,
            username=fleet_username(n),
            connected_app=connected_app,
        )
        org.instance_url = server.instance_url
        return org

    def route(scope: Scope, body: bytes | None) -> Routed | None:
        path: str = scope.get("path", "")
        own = _ORG_PATH.match(path)
        if own is not None:
            inner = own.group(2)
            return Routed(int(own.group(1)), {**scope, "path": inner, "raw_path": inner.encode("latin-1")})
        if body is not None:
            index = _login_org(body, usernames) if path.rstrip("/") == TOKEN_PATH else None
            if index is None:
                session = _SESSION_ID.search(body)
                index = org_ids.get(session.group(1).decode("latin-1")[:15]) if session else None
            return None if index is None else Routed(index, scope)
        token = _session(scope)
        index = org_ids.get(token[:15]) if token is not None else None
        return None if index is None else Routed(index, scope)

    def needs_body(scope: Scope) -> bool:
        path: str = scope.get("path", "")
        return scope["method"] == "POST" and (
            path.rstrip("/") == TOKEN_PATH or path.startswith("/services/Soap/")
        )

    def unknown(scope: Scope) -> Response:
        if scope.get("path", "").rstrip("/") == TOKEN_PATH:
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "authentication failure"}, status_code=400
            )
        return invalid_session().response()

    def describe(n: int) -> dict[str, Any]:
        return {"org": n, "org_id": make_id("00D", n + 1), "seed": seed + n, "username": fleet_username(n)}

    spec = TenantSpec[SalesforceOrg](
        plural="orgs",
        count=orgs,
        build=build,
        app=build_app,
        stats=lambda org: org.stats,
        injector=lambda org: org.injector,
        describe=describe,
        route=route,
        needs_body=needs_body,
        unknown=unknown,
    )
    server = OrgFleet(spec, clock, faults, connected_app[0])
    return server


def _login_org(body: bytes, usernames: dict[str, int]) -> int | None:
    form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    username = form.get("username")
    if form.get("grant_type", "").endswith("jwt-bearer"):
        try:  # only to find the org: the org itself verifies the signature and the claims
            claims = jwt.decode(form.get("assertion", ""), options={"verify_signature": False})
        except jwt.InvalidTokenError:
            return None
        username = str(claims.get("sub", ""))
    return usernames.get(username or "")


def _session(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() or None if scheme.lower() in ("bearer", "oauth") else None
    return None


@dataclass(frozen=True)
class SalesforceFleet:
    """A running multi-org sandbox: where it listens, how to log in to each org, its control clients."""

    instance_url: str
    ca_file: Path
    consumer_key: str  # the shared connected app's (JWT bearer)
    private_key_file: Path
    client_id: str
    client_secret: str
    password: str  # every org's API user has this password (legacy flow)
    usernames: tuple[str, ...]  # org n's API user at index n
    control: SandboxControl  # the whole server: summed stats, every org's faults, the shared clock
    server: OrgFleet

    def org_url(self, org: int) -> str:
        """Org ``org``'s own URL (its "My Domain"): the client-credentials login goes there."""
        return f"{self.instance_url}/orgs/{org}"

    def control_for(self, org: int) -> SandboxControl:
        """Org ``org``'s own introspection (stats, snapshot/restore, faults, Salesforce's routes)."""
        return SandboxControl(self.instance_url, verify=str(self.ca_file), tenant=f"orgs/{org}")


@contextmanager
def running_salesforce_fleet(
    orgs: int,
    deals: int = 200,
    seed: int = 7,
    now: datetime | None = None,
    faults: FaultConfig | None = None,
    daily_api_limit: int = DEFAULT_DAILY_API_LIMIT,
    bare: bool = False,
) -> Iterator[SalesforceFleet]:
    """Start a multi-org sandbox on https://127.0.0.1 and a free port; stop it and remove its TLS files."""
    server = salesforce_fleet(
        orgs=orgs, deals=deals, seed=seed, now=now, faults=faults, daily_api_limit=daily_api_limit, bare=bare
    )
    tls = make_tls_files()
    try:
        key_file = write_key_file(server.connected_app, tls.directory)
        with (
            serve_in_thread(server, ssl_certfile=tls.cert_file, ssl_keyfile=tls.key_file) as running,
            SandboxControl(running.base_url, verify=str(tls.ca_file)) as control,
        ):
            server.instance_url = running.base_url
            app = server.connected_app
            yield SalesforceFleet(
                instance_url=running.base_url,
                ca_file=tls.ca_file,
                consumer_key=app.consumer_key,
                private_key_file=key_file,
                client_id=app.client_id,
                client_secret=app.client_secret,
                password=app.password,
                usernames=tuple(fleet_username(n) for n in range(orgs)),
                control=control,
                server=server,
            )
    finally:
        tls.cleanup()


def write_key_file(app: Credentials, directory: Path) -> Path:
    """The connected app's JWT private key in ``directory``, readable by the owner only; its path."""
    key_file = directory / "jwt-private-key.pem"
    key_file.touch(mode=0o600)
    key_file.write_text(app.private_key_pem)
    return key_file
