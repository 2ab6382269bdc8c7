"""Introspection routes under ``/__sandbox__/``: request counts, data snapshots, faults and the clock.

Each CRM sandbox mounts them beside its own API; ``SandboxControl`` (sandbox/control_client.py) calls them:

    from crm_sandbox.control import SandboxStore, control_routes

    routes = [*control_routes(lambda: store, injector, stats, clock), *crm_routes]

    GET  /__sandbox__/stats         {"total", "endpoints": {"GET /crm/v3/objects/deals": 3}, "statuses",
                                     "faults": {"server_error": 0, "rate_limited": 0, "drop": 0}}
    POST /__sandbox__/reset-stats   204
    POST /__sandbox__/snapshot      {"name": "before"}  -> 201 {"name": "before"}
    POST /__sandbox__/restore       {"name": "before"}  -> 200, or 404 for an unknown name
    GET  /__sandbox__/faults        the FaultConfig as JSON
    POST /__sandbox__/faults        a FaultConfig (missing keys take defaults; {} or null = no faults) -> 200
    GET  /__sandbox__/clock         {"now": iso, "real": bool, "frozen": bool}
    POST /__sandbox__/clock         {"now": iso | null, "ticking": false} -> 200 with the new state

These paths are never counted in the stats and never faulted (both middlewares skip ``/__sandbox__/``).
Bad input gets 400 with ``{"error": "..."}``.

``SandboxStore`` is what a CRM's data store implements for snapshot/restore. Make ``snapshot()`` cheap: keep
records immutable (replace a record on update instead of mutating it), so a snapshot is a shallow copy of
each table (``dict(table)``: a few milliseconds for 100,000 deals) and restore puts the copies back. A
snapshot must not share mutable containers with the live store.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from crm_sandbox.clock import SandboxClock
from crm_sandbox.faults import FaultConfig, FaultInjector
from crm_sandbox.stats import RequestStats
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

__all__ = ["CONTROL_MOUNT", "SandboxStore", "SnapshotRegistry", "control_routes"]

CONTROL_MOUNT = "/__sandbox__"


class SandboxStore(Protocol):
    """A CRM sandbox's data, as far as snapshot/restore needs it."""

    def snapshot(self) -> object:
        """An independent copy of the whole state (later writes to the store must not change it)."""
        ...

    def restore(self, state: object) -> None:
        """Put back a state returned by ``snapshot()``; the state may be restored again later."""
        ...


class SnapshotRegistry:
    """Named snapshots of one store; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, object] = {}

    def save(self, name: str, state: object) -> None:
        with self._lock:
            self._states[name] = state

    def get(self, name: str) -> object | None:
        with self._lock:
            return self._states.get(name)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._states)


class _BadRequest(ValueError):
    pass


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise _BadRequest(f"body is not JSON: {exc}") from None


async def _snapshot_name(request: Request) -> str:
    body = await _json_body(request)
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name:
        raise _BadRequest('body must be {"name": "<non-empty string>"}')
    return name


def _clock_state(clock: SandboxClock) -> dict[str, Any]:
    return {"now": clock.now().isoformat(), "real": clock.is_real, "frozen": clock.is_frozen}


def control_routes(
    store_provider: Callable[[], SandboxStore],
    injector: FaultInjector,
    stats: RequestStats,
    clock: SandboxClock,
) -> list[BaseRoute]:
    """The ``/__sandbox__`` mount for one sandbox; ``store_provider`` is called at each snapshot/restore."""
    snapshots = SnapshotRegistry()

    async def get_stats(request: Request) -> Response:
        return JSONResponse({**stats.snapshot(), "faults": injector.counts()})

    async def reset_stats(request: Request) -> Response:
        stats.reset()
        return Response(status_code=204)

    async def snapshot(request: Request) -> Response:
        try:
            name = await _snapshot_name(request)
        except _BadRequest as exc:
            return _error(400, str(exc))
        snapshots.save(name, store_provider().snapshot())
        return JSONResponse({"name": name}, status_code=201)

    async def restore(request: Request) -> Response:
        try:
            name = await _snapshot_name(request)
        except _BadRequest as exc:
            return _error(400, str(exc))
        state = snapshots.get(name)
        if state is None:
            return _error(404, f"no snapshot named {name!r}; known: {', '.join(snapshots.names()) or 'none'}")
        store_provider().restore(state)
        return JSONResponse({"name": name})

    async def get_faults(request: Request) -> Response:
        return JSONResponse(injector.config.to_dict())

    async def set_faults(request: Request) -> Response:
        try:
            body = await _json_body(request)
            if body is not None and not isinstance(body, dict):
                raise _BadRequest("body must be a JSON object of fault settings, or null")
            config = FaultConfig.from_dict(body or {})
        except ValueError as exc:  # _BadRequest and FaultConfig validation alike
            return _error(400, str(exc))
        injector.configure(config)
        return JSONResponse(config.to_dict())

    async def get_clock(request: Request) -> Response:
        return JSONResponse(_clock_state(clock))

    async def set_clock(request: Request) -> Response:
        try:
            body = await _json_body(request)
            if not isinstance(body, dict) or "now" not in body:
                raise _BadRequest('body must be {"now": "<ISO 8601 with offset>" | null, "ticking": false}')
            when = None if body["now"] is None else datetime.fromisoformat(str(body["now"]))
            ticking = body.get("ticking", False)
            if not isinstance(ticking, bool):
                raise _BadRequest("ticking must be true or false")
            clock.set(when, ticking=ticking)
        except ValueError as exc:
            return _error(400, str(exc))
        return JSONResponse(_clock_state(clock))

    return [
        Mount(
            CONTROL_MOUNT,
            routes=[
                Route("/stats", get_stats, methods=["GET"]),
                Route("/reset-stats", reset_stats, methods=["POST"]),
                Route("/snapshot", snapshot, methods=["POST"]),
                Route("/restore", restore, methods=["POST"]),
                Route("/faults", get_faults, methods=["GET"]),
                Route("/faults", set_faults, methods=["POST"]),
                Route("/clock", get_clock, methods=["GET"]),
                Route("/clock", set_clock, methods=["POST"]),
            ],
        )
    ]
