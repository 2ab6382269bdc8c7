"""``running_hubspot_sandbox``: a HubSpot sandbox on a free local port for the length of a ``with`` block.

    with running_hubspot_sandbox(seed=7, deals=200) as hs:
        api = HubSpot(access_token=hs.access_token, host=hs.base_url)
        api.crm.deals.basic_api.get_page(limit=10)
        hs.control.stats()                       # the shared /__sandbox__/ introspection client

``now`` pins the dataset's "now" and starts the sandbox clock there (ticking); without it the dataset is
drawn as of the current hour and the clock is real time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from crm_sandbox.control_client import SandboxControl
from crm_sandbox.dataset import Dataset
from crm_sandbox.faults import FaultConfig
from crm_sandbox.hubspot.app import HubSpotPortal, build_portal
from crm_sandbox.hubspot.ratelimit import RateLimitConfig
from crm_sandbox.seeding import seeded_start
from crm_sandbox.server import serve_in_thread

__all__ = ["HubSpotSandbox", "running_hubspot_sandbox"]


@dataclass(frozen=True)
class HubSpotSandbox:
    """Where a running sandbox listens and how to reach it; ``portal`` is the in-process state, for tests."""

    base_url: str
    access_token: str
    control: SandboxControl
    portal: HubSpotPortal


@contextmanager
def running_hubspot_sandbox(
    seed: int = 7,
    deals: int = 200,
    now: datetime | None = None,
    faults: FaultConfig | None = None,
    bare: bool = False,
    rate_limits: RateLimitConfig | None = None,
    search_lag_ms: int = 0,
    dataset: Dataset | None = None,
    access_token: str | None = None,
    association_page_size: int = 500,
) -> Iterator[HubSpotSandbox]:
    """Start a sandbox on 127.0.0.1 and a free port; stop it when the block exits."""
    dataset, clock = seeded_start(seed, deals, now, dataset=dataset)
    portal = build_portal(
        dataset,
        clock=clock,
        bare=bare,
        rate_limits=rate_limits,
        faults=faults,
        search_lag_ms=search_lag_ms,
        access_token=access_token,
        association_page_size=association_page_size,
    )
    with serve_in_thread(portal.app) as server, SandboxControl(server.base_url) as control:
        yield HubSpotSandbox(server.base_url, portal.access_token, control, portal)
