"""A HubSpot-compatible API server for demos, tests and benchmarks (``followup sandbox hubspot``).

Serves the CRM v3/v4 endpoints hubspot-api-client 12 calls, with HubSpot's status codes, error bodies,
rate limits and search semantics, over a portal seeded from ``crm_sandbox.dataset``. Start it with
``running_hubspot_sandbox(...)`` (tests) or ``build_portal(...)`` plus ``crm_sandbox.server`` (CLI).
Module map: store/records/associations/lists (state), loader/render (dataset -> portal), search (indexed
search), gateway/ratelimit (auth and limits), routes_* (HTTP), app (composition), running (context manager).
"""

from __future__ import annotations

from crm_sandbox.hubspot.app import HubSpotPortal, build_portal, default_token
from crm_sandbox.hubspot.ratelimit import RateLimitConfig
from crm_sandbox.hubspot.running import HubSpotSandbox, running_hubspot_sandbox

__all__ = [
    "HubSpotPortal",
    "HubSpotSandbox",
    "RateLimitConfig",
    "build_portal",
    "default_token",
    "running_hubspot_sandbox",
]
