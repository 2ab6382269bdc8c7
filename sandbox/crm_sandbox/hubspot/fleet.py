"""Many HubSpot portals behind one server (``crm-sandbox hubspot --portals N``), for fleets of accounts.

HubSpot serves every portal from one API host and tells them apart by the access token, so this server does
the same: portal ``n`` is the sandbox ``running_hubspot_sandbox(seed=seed + n, ...)`` would start (its own
dataset, token ``default_token(seed + n)``, Hub ID ``40000000 + seed + n``, 10-second window and daily
budget, faults drawn from ``fault seed + n``), built on its token's first request. A token no portal has
gets HubSpot's 401. Introspection per portal under ``/__sandbox__/portals/{n}/`` (crm_sandbox/tenants.py).

    with running_hubspot_fleet(portals=100, deals=200, now=...) as fleet:
        HubSpot(access_token=fleet.tokens[3], host=fleet.base_url)   # portal 3
        fleet.control_for(3).stats()                                  # portal 3's counts
        fleet.control.stats()                                         # all portals'
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from crm_sandbox.clock import SandboxClock
from crm_sandbox.control_client import SandboxControl
from crm_sandbox.dataset import generate, generate_or_load
from crm_sandbox.faults import FaultConfig
from crm_sandbox.hubspot.app import HubSpotPortal, build_portal, default_token
from crm_sandbox.hubspot.errors import UNAUTHORIZED_MESSAGE, error_body, json_response
from crm_sandbox.hubspot.ratelimit import RateLimitConfig
from crm_sandbox.seeding import default_now
from crm_sandbox.server import serve_in_thread
from crm_sandbox.tenants import Routed, TenantServer, TenantSpec
from starlette.responses import Response
from starlette.types import Scope

__all__ = ["HubSpotFleet", "hubspot_fleet", "running_hubspot_fleet"]


def hubspot_fleet(
    *,
    portals: int,
    deals: int,
    seed: int = 7,
    now: datetime | None = None,
    clock: SandboxClock | None = None,
    bare: bool = False,
    rate_limits: RateLimitConfig | None = None,
    faults: FaultConfig | None = None,
    search_lag_ms: int = 0,
    data_dir: Path | None = None,
    association_page_size: int = 500,
) -> TenantServer[HubSpotPortal]:
    """The ASGI app of ``portals`` portals of ``deals`` deals each; portal ``n`` is seeded ``seed + n``.

    ``now`` pins every dataset's "now" and starts the shared clock there (ticking); ``data_dir`` caches
    the generated datasets (one folder per portal).
    """
    dataset_now = now or default_now()
    clock = clock or SandboxClock()
    if now is not None and clock.is_real:
        clock.set(now, ticking=True)
    tokens = {default_token(seed + n): n for n in range(portals)}

    def build(n: int) -> HubSpotPortal:
        dataset = (
            generate_or_load(seed + n, deals, dataset_now, data_dir)
            if data_dir
            else generate(seed + n, deals, dataset_now)
        )
        return build_portal(
            dataset,
            clock=clock,
            bare=bare,
            rate_limits=rate_limits,
            search_lag_ms=search_lag_ms,
            association_page_size=association_page_size,
        )

    def route(scope: Scope, _body: bytes | None) -> Routed | None:
        token = _bearer(scope)
        index = tokens.get(token) if token is not None else None
        return None if index is None else Routed(index, scope)

    def unknown(_scope: Scope) -> Response:
        return json_response(error_body("INVALID_AUTHENTICATION", UNAUTHORIZED_MESSAGE), 401)

    def describe(n: int) -> dict[str, Any]:
        return {
            "portal": n,
            "portal_id": 40_000_000 + seed + n,
            "seed": seed + n,
            "access_token": default_token(seed + n),
        }

    spec = TenantSpec[HubSpotPortal](
        plural="portals",
        count=portals,
        build=build,
        app=lambda portal: portal.app,
        stats=lambda portal: portal.stats,
        injector=lambda portal: portal.injector,
        describe=describe,
        route=route,
        needs_body=lambda _scope: False,
        unknown=unknown,
    )
    return TenantServer(spec, clock, faults)


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            text = value.decode("latin-1")
            return text[7:].strip() or None if text[:7].lower() == "bearer " else None
    return None


@dataclass(frozen=True)
class HubSpotFleet:
    """A running multi-portal sandbox: where it listens, each portal's token, and its control clients."""

    base_url: str
    tokens: tuple[str, ...]  # portal n's access token at index n
    control: SandboxControl  # the whole server: summed stats, every portal's faults, the shared clock
    server: TenantServer[HubSpotPortal]

    def control_for(self, portal: int) -> SandboxControl:
        """Portal ``portal``'s own introspection (stats, snapshot/restore, faults)."""
        return SandboxControl(self.base_url, tenant=f"portals/{portal}")


@contextmanager
def running_hubspot_fleet(
    portals: int,
    deals: int = 200,
    seed: int = 7,
    now: datetime | None = None,
    faults: FaultConfig | None = None,
    rate_limits: RateLimitConfig | None = None,
    bare: bool = False,
) -> Iterator[HubSpotFleet]:
    """Start a multi-portal sandbox on 127.0.0.1 and a free port; stop it when the block exits."""
    server = hubspot_fleet(
        portals=portals, deals=deals, seed=seed, now=now, faults=faults, rate_limits=rate_limits, bare=bare
    )
    tokens = tuple(default_token(seed + n) for n in range(portals))
    with serve_in_thread(server) as running, SandboxControl(running.base_url) as control:
        yield HubSpotFleet(running.base_url, tokens, control, server)
