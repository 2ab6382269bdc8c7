"""The HubSpot sandbox's composition root: store, routes, gateway, and the shared faults/stats/control.

    portal = build_portal(dataset, clock=SandboxClock(), rate_limits=RateLimitConfig.tier("professional"))
    portal.app            # the ASGI app to hand to crm_sandbox.server
    portal.access_token   # what clients send as "Authorization: Bearer ..."

Middleware order, outermost first: request stats (so faulted requests are counted), faults (a 5xx or a
dropped connection happens before HubSpot's gateway, as at a load balancer), then the gateway (token, limits).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import datetime

from crm_sandbox.clock import SandboxClock
from crm_sandbox.control import control_routes
from crm_sandbox.dataset import Dataset
from crm_sandbox.faults import FaultConfig, FaultInjector, FaultMiddleware
from crm_sandbox.hubspot.gateway import HubSpotGateway, hubspot_fault_renderers
from crm_sandbox.hubspot.loader import load_dataset
from crm_sandbox.hubspot.ratelimit import RateLimitConfig, RateLimiter
from crm_sandbox.hubspot.routes_associations import association_routes
from crm_sandbox.hubspot.routes_batch import batch_routes
from crm_sandbox.hubspot.routes_lists import list_routes
from crm_sandbox.hubspot.routes_objects import object_routes
from crm_sandbox.hubspot.routes_schema import schema_routes
from crm_sandbox.hubspot.store import HubSpotStore
from crm_sandbox.stats import RequestStats, RequestStatsMiddleware
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

__all__ = ["HubSpotPortal", "build_portal", "default_token"]


def default_token(seed: int) -> str:
    """A private-app-looking token, stable per seed so scripts can hard-code it for a local sandbox."""
    digest = f"{zlib.crc32(f'hubspot-sandbox-{seed}'.encode()):08x}"
    return f"pat-na1-sandbox-{digest}-0000-4000-8000-{seed:012d}"


@dataclass
class HubSpotPortal:
    """Everything one running HubSpot sandbox is made of."""

    app: Starlette
    store: HubSpotStore
    limiter: RateLimiter
    injector: FaultInjector
    stats: RequestStats
    clock: SandboxClock
    access_token: str
    portal_id: int
    tokens: dict[str, datetime] = field(default_factory=dict)


def build_portal(
    dataset: Dataset,
    *,
    clock: SandboxClock | None = None,
    bare: bool = False,
    rate_limits: RateLimitConfig | None = None,
    faults: FaultConfig | None = None,
    search_lag_ms: int = 0,
    access_token: str | None = None,
    association_page_size: int = 500,
) -> HubSpotPortal:
    """Load ``dataset`` into a new portal and build its ASGI app."""
    clock = clock or SandboxClock()
    store = HubSpotStore(clock, bare=bare, search_lag_ms=search_lag_ms)
    load_dataset(store, dataset)
    limiter = RateLimiter(rate_limits or RateLimitConfig(), clock)
    injector = FaultInjector(faults or FaultConfig(seed=dataset.seed))
    stats = RequestStats()
    token = access_token or default_token(dataset.seed)
    portal_id = 40_000_000 + dataset.seed
    tokens = {token: clock.now()}
    crm_routes: list[BaseRoute] = [
        *batch_routes(store),
        *object_routes(store),
        *association_routes(store, association_page_size),
        *schema_routes(store),
        *list_routes(store),
    ]
    routes = [*control_routes(lambda: store, injector, stats, clock), *crm_routes]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestStatsMiddleware, stats=stats, routes=routes),
            Middleware(
                FaultMiddleware,
                injector_provider=injector,
                renderers=hubspot_fault_renderers(limiter, injector),
            ),
            Middleware(
                HubSpotGateway,
                tokens=lambda: tokens,
                limiter=limiter,
                injector=injector,
                clock=clock,
                portal_id=portal_id,
            ),
        ],
    )
    return HubSpotPortal(app, store, limiter, injector, stats, clock, token, portal_id, tokens)
