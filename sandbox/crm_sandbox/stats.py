"""Per-endpoint request counts, so tests and benchmarks can assert how many calls a connector made.

    from crm_sandbox.stats import RequestStats, RequestStatsMiddleware

    stats = RequestStats()
    app = Starlette(routes=routes, middleware=[
        # outermost, so requests a fault answered are counted too
        Middleware(RequestStatsMiddleware, stats=stats, routes=routes),
        Middleware(FaultMiddleware, ...),
    ])
    stats.snapshot()  # {"total": 3, "endpoints": {"GET /crm/v3/objects/deals/{dealId}": 2, ...},
                      #  "statuses": {"200": 2, "429": 1}}

Counts are keyed ``"METHOD /route/template"``: the template of the Starlette route that matches the request
(path parameters left as ``{name}``), so a hundred reads of different deals count under one key. With
``routes`` given, the template is found before the request goes on, which also names requests that a fault
answered before they reached the router; without it, the route Starlette matched (``scope["route"]``) is
used after the fact. Requests no route matches are counted under their raw path. Paths under
``/__sandbox__/`` are never counted: introspection must not disturb what it measures.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any

from crm_sandbox.faults import CONTROL_PREFIX
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["RequestStats", "RequestStatsMiddleware", "route_template"]


class RequestStats:
    """Thread-safe counters of requests by endpoint and by status."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._endpoints: Counter[str] = Counter()
        self._statuses: Counter[str] = Counter()
        self._total = 0

    def record(self, key: str, status: int | None) -> None:
        """Count one request under ``key`` ("METHOD /template") and its response status."""
        with self._lock:
            self._total += 1
            self._endpoints[key] += 1
            self._statuses[str(status) if status is not None else "none"] += 1

    def reset(self) -> None:
        """Forget every count."""
        with self._lock:
            self._total = 0
            self._endpoints.clear()
            self._statuses.clear()

    def count(self, key: str) -> int:
        """Requests counted under ``key``."""
        with self._lock:
            return self._endpoints[key]

    @property
    def total(self) -> int:
        with self._lock:
            return self._total

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready copy: ``{"total": n, "endpoints": {key: n}, "statuses": {"200": n}}``, keys sorted."""
        with self._lock:
            return {
                "total": self._total,
                "endpoints": dict(sorted(self._endpoints.items())),
                "statuses": dict(sorted(self._statuses.items())),
            }


def route_template(routes: Sequence[BaseRoute], scope: Scope) -> str | None:
    """The path template of the route that would handle ``scope``, walking into mounts; None if none does."""
    partial: str | None = None
    for route in routes:
        match, child_scope = route.matches(scope)
        if match is Match.FULL:
            return _template_of(route, scope, child_scope)
        if match is Match.PARTIAL and partial is None:  # right path, wrong method: still this endpoint
            partial = _template_of(route, scope, child_scope)
    return partial


def _template_of(route: BaseRoute, scope: Scope, child_scope: Scope) -> str | None:
    if isinstance(route, Mount):
        inner = route_template(route.routes, {**scope, **child_scope})
        return route.path + inner if inner is not None else None
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


class RequestStatsMiddleware:
    """ASGI middleware counting each HTTP request under its method and route template."""

    def __init__(self, app: ASGIApp, stats: RequestStats, routes: Sequence[BaseRoute] | None = None) -> None:
        self.app = app
        self.stats = stats
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        template = route_template(self.routes, scope) if self.routes is not None else None
        status: int | None = None

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            if template is None:
                route = scope.get("route")
                template = route.path if isinstance(route, Route) else path
            self.stats.record(f"{scope['method']} {template}", status)
