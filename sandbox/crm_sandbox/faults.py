"""Deterministic fault injection for the sandboxes: 5xx answers, latency, 429 storms, dropped connections.

A CRM sandbox composes three pieces:

    from crm_sandbox.faults import FaultConfig, FaultInjector, FaultMiddleware, FaultRenderers

    injector = FaultInjector(FaultConfig(error_rate=0.05, latency_ms=20, seed=7))
    app = Starlette(routes=..., middleware=[
        Middleware(FaultMiddleware, injector_provider=lambda: injector,
                   renderers=FaultRenderers(server_error=my_5xx, rate_limited=my_429)),
    ])
    # in the CRM's auth check:  if injector.token_expired(issued_at, clock.now()): answer 401

``FaultConfig`` (frozen) says how often each fault happens; ``FaultInjector`` draws the faults from a
``random.Random(seed)``, so the n-th request after (re)configuration always gets the same fault for the same
seed: a failing test replays exactly. (With concurrent clients the *sequence* is fixed, which request gets
which slot depends on arrival order.) Replacing the config (``POST /__sandbox__/faults``) restarts the
sequence.

Fault kinds:
- ``SERVER_ERROR``: a 500/502/503/504 drawn from the sequence, with the body the CRM's renderer makes.
- ``RATE_LIMITED``: a 429 (or whatever the CRM's renderer answers); ``rate_limit_burst`` makes each storm
  last that many consecutive requests; ``retry_after_s`` asks a renderer whose CRM can send ``Retry-After``
  to send it (HubSpot's does; Salesforce answers a 403 without one).
- ``DROP``: the response starts with ``Content-Length: N``, sends part of the body and the connection is
  closed: clients see an incomplete read (requests raises ``ChunkedEncodingError``, urllib3
  ``ProtocolError``), as when a proxy or the network breaks mid-response.
- latency (``latency_ms`` plus up to ``latency_jitter_ms``) is added to every request, faulted or not.

Paths under ``/__sandbox__/`` are never faulted, nor any ``exempt_prefixes`` a CRM passes (for instance
its OAuth token endpoint, if it wants that to stay reliable).

Token expiry is enforced by the CRM apps themselves, because only they know when a token was issued:
``injector.token_expired(issued_at, now)`` is true once ``token_ttl_s`` has passed (never when it is None).
Pass the sandbox clock's ``now`` so tests can expire tokens by moving the clock.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CONTROL_PREFIX",
    "Fault",
    "FaultConfig",
    "FaultInjector",
    "FaultKind",
    "FaultMiddleware",
    "FaultRenderers",
]

CONTROL_PREFIX = "/__sandbox__/"
_SERVER_ERROR_STATUSES = (500, 502, 503, 504)
_DROP_DECLARED_LENGTH = 4096
_DROP_SENT = b'{"results":[{"id":"1","properties":{"dealname":"Interrupted'


class FaultKind(StrEnum):
    SERVER_ERROR = "server_error"
    RATE_LIMITED = "rate_limited"
    DROP = "drop"


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """How often each fault happens. All rates are shares of requests, 0..1; their sum must not exceed 1."""

    error_rate: float = 0.0  # share answered with a 5xx
    latency_ms: float = 0.0  # added to every request
    latency_jitter_ms: float = 0.0  # plus a uniform 0..jitter extra
    rate_limit_storm: float = 0.0  # share of requests that start a rate-limit storm
    rate_limit_burst: int = 1  # requests each storm lasts
    drop_rate: float = 0.0  # share of connections dropped mid-response
    token_ttl_s: float | None = None  # access tokens expire this long after issue; None = never
    seed: int = 0
    retry_after_s: int | None = None  # Retry-After (seconds) on injected 429s, where the CRM sends one

    def __post_init__(self) -> None:
        problems = []
        for name in ("error_rate", "rate_limit_storm", "drop_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                problems.append(f"{name} must be between 0 and 1, got {value}")
        if self.error_rate + self.rate_limit_storm + self.drop_rate > 1.0 + 1e-9:
            problems.append("error_rate + rate_limit_storm + drop_rate must not exceed 1")
        if self.latency_ms < 0 or self.latency_jitter_ms < 0:
            problems.append("latency_ms and latency_jitter_ms must not be negative")
        if self.rate_limit_burst < 1:
            problems.append("rate_limit_burst must be at least 1")
        if self.token_ttl_s is not None and self.token_ttl_s <= 0:
            problems.append("token_ttl_s must be positive or null")
        if self.retry_after_s is not None and self.retry_after_s < 0:
            problems.append("retry_after_s must not be negative")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def injects(self) -> bool:
        """True when any request can be faulted or delayed."""
        return bool(
            self.error_rate
            or self.rate_limit_storm
            or self.drop_rate
            or self.latency_ms
            or self.latency_jitter_ms
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as ``GET /__sandbox__/faults`` answers."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultConfig:
        """Build from JSON; unknown keys and wrong types raise ``ValueError`` naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(unknown)}")
        clean: dict[str, Any] = {}
        for key, value in data.items():
            if key in ("seed", "rate_limit_burst") or (key == "retry_after_s" and value is not None):
                if not isinstance(value, int) or isinstance(value, bool):
                    raise ValueError(f"{key} must be an integer")
            elif key in ("token_ttl_s", "retry_after_s") and value is None:
                pass
            elif not isinstance(value, int | float) or isinstance(value, bool):
                raise ValueError(f"{key} must be a number")
            clean[key] = value
        return cls(**clean)


@dataclass(frozen=True, slots=True)
class Fault:
    """What to do to one request: an optional failure and a delay."""

    kind: FaultKind | None
    latency_s: float = 0.0
    status: int | None = None  # the 5xx for SERVER_ERROR


class FaultInjector:
    """Draws faults from a seeded sequence; thread-safe; reconfigurable at run time."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self._lock = threading.Lock()
        self._config = config or FaultConfig()
        self._rng = random.Random(self._config.seed)
        self._storm_left = 0
        self._counts = {kind.value: 0 for kind in FaultKind}

    @property
    def config(self) -> FaultConfig:
        return self._config

    def configure(self, config: FaultConfig) -> None:
        """Replace the config and restart the sequence from its seed."""
        with self._lock:
            self._config = config
            self._rng = random.Random(config.seed)
            self._storm_left = 0
            self._counts = {kind.value: 0 for kind in FaultKind}

    def counts(self) -> dict[str, int]:
        """How many faults of each kind were injected since the last (re)configuration."""
        with self._lock:
            return dict(self._counts)

    def next_fault(self, path: str) -> Fault | None:
        """The fault for the next request to ``path``, or None when it should be served normally."""
        config = self._config
        if not config.injects or path.startswith(CONTROL_PREFIX):
            return None
        with self._lock:
            config = self._config
            # Always three draws per request, so a change in one rate never shifts the others' sequence.
            pick, status_pick, jitter = self._rng.random(), self._rng.random(), self._rng.random()
            kind: FaultKind | None = None
            if self._storm_left > 0:
                self._storm_left -= 1
                kind = FaultKind.RATE_LIMITED
            elif pick < config.error_rate:
                kind = FaultKind.SERVER_ERROR
            elif pick < config.error_rate + config.rate_limit_storm:
                kind = FaultKind.RATE_LIMITED
                self._storm_left = config.rate_limit_burst - 1
            elif pick < config.error_rate + config.rate_limit_storm + config.drop_rate:
                kind = FaultKind.DROP
            if kind is not None:
                self._counts[kind.value] += 1
        latency_s = (config.latency_ms + jitter * config.latency_jitter_ms) / 1000.0
        if kind is None and latency_s <= 0:
            return None
        status = _SERVER_ERROR_STATUSES[int(status_pick * len(_SERVER_ERROR_STATUSES))]
        return Fault(kind, latency_s, status if kind is FaultKind.SERVER_ERROR else None)

    def token_expired(self, issued_at: datetime, now: datetime) -> bool:
        """True when a token issued at ``issued_at`` has outlived ``token_ttl_s`` at ``now``."""
        ttl = self._config.token_ttl_s
        return ttl is not None and now - issued_at >= timedelta(seconds=ttl)


def _default_server_error(scope: Scope, fault: Fault) -> Response:
    return JSONResponse({"message": "Injected sandbox fault"}, status_code=fault.status or 500)


def _default_rate_limited(scope: Scope, fault: Fault) -> Response:
    return JSONResponse(
        {"message": "Too many requests (injected)"}, status_code=429, headers={"Retry-After": "1"}
    )


FaultRenderer = Callable[[Scope, Fault], Response]


@dataclass(frozen=True, slots=True)
class FaultRenderers:
    """How a CRM words an injected failure: each gets the ASGI scope and the fault, returns a Response."""

    server_error: FaultRenderer = _default_server_error
    rate_limited: FaultRenderer = _default_rate_limited


# Set while a DROP is being sent, so the log filter below can silence uvicorn's "returned without completing
# response" error for our deliberate drops only; a real handler bug still logs.
_dropping: contextvars.ContextVar[bool] = contextvars.ContextVar("sandbox_dropping", default=False)


class _DeliberateDropFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _dropping.get()


_drop_filter = _DeliberateDropFilter()


class FaultMiddleware:
    """ASGI middleware: asks the injector about each HTTP request and delays, fails or drops it."""

    def __init__(
        self,
        app: ASGIApp,
        injector_provider: Callable[[], FaultInjector] | FaultInjector,
        renderers: FaultRenderers | None = None,
        exempt_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self._provider = injector_provider if callable(injector_provider) else (lambda: injector_provider)
        self.renderers = renderers or FaultRenderers()
        self.exempt_prefixes = (CONTROL_PREFIX, *exempt_prefixes)
        uvicorn_errors = logging.getLogger("uvicorn.error")
        if _drop_filter not in uvicorn_errors.filters:
            uvicorn_errors.addFilter(_drop_filter)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(self.exempt_prefixes):
            await self.app(scope, receive, send)
            return
        fault = self._provider().next_fault(path)
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault.latency_s > 0:
            await asyncio.sleep(fault.latency_s)
        if fault.kind is None:
            await self.app(scope, receive, send)
        elif fault.kind is FaultKind.SERVER_ERROR:
            await self.renderers.server_error(scope, fault)(scope, receive, send)
        elif fault.kind is FaultKind.RATE_LIMITED:
            await self.renderers.rate_limited(scope, fault)(scope, receive, send)
        else:
            await _drop(send)


async def _drop(send: Send) -> None:
    """Promise a body, send part of it, and return: the server then closes the connection mid-response."""
    start: Message = {
        "type": "http.response.start",
        "status": 200,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(_DROP_DECLARED_LENGTH).encode()),
        ],
    }
    await send(start)
    await send({"type": "http.response.body", "body": _DROP_SENT, "more_body": True})
    _dropping.set(True)  # read by the log filter in this same task when uvicorn reports the incomplete body
