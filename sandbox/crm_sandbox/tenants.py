"""One sandbox server for many CRM accounts: HubSpot portals or Salesforce orgs, each its own world.

A fleet of crm-followup accounts needs as many CRMs; hundreds of sandbox processes would not fit on a small
machine, so one server holds them all. Each tenant is a complete sandbox (its own data, tokens, rate limits,
daily API budget, faults and request stats), built the first time a request or a control call names it
(generating a 200-deal dataset takes a tenth of a second; a tenant never used costs nothing). All tenants
share the server's clock.

Requests reach a tenant the way they reach the real CRM's account: HubSpot by the access token (one API
host, the token names the portal), Salesforce by the session id (it starts with the org id), by the
username of a login, or under ``/orgs/{n}/`` (the org's "My Domain"). The CRM module gives that routing;
this module gives the dispatch and the introspection:

    GET  /__sandbox__/{tenants}              every tenant: number, whether it is built, its requests, and
                                             what a client needs to reach it (token, username, ...)
    *    /__sandbox__/{tenants}/{n}/...      tenant n's own control routes (stats, faults, snapshot, ...)
    GET  /__sandbox__/stats                  all built tenants' counts added up, and each one's total
    POST /__sandbox__/reset-stats            zero every tenant's counts
    GET / POST /__sandbox__/faults           the faults of every tenant (tenant n draws from seed + n)
    GET / POST /__sandbox__/clock            the shared clock

``{tenants}`` is ``portals`` (HubSpot) or ``orgs`` (Salesforce). A snapshot or restore is per tenant.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Generic, TypeVar

from crm_sandbox.clock import SandboxClock
from crm_sandbox.faults import FaultConfig, FaultInjector
from crm_sandbox.stats import RequestStats
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Routed", "TenantServer", "TenantSpec"]

T = TypeVar("T")

CONTROL = "/__sandbox__"


@dataclass(frozen=True, slots=True)
class Routed:
    """Which tenant a request is for, and the request as that tenant's app must see it."""

    index: int
    scope: Scope


@dataclass(frozen=True)
class TenantSpec(Generic[T]):
    """What a CRM tells the server about its tenants."""

    plural: str  # "portals" | "orgs": the introspection path and the word in messages
    count: int
    build: Callable[[int], T]  # tenant n, built on first use (in a worker thread)
    app: Callable[[T], ASGIApp]
    stats: Callable[[T], RequestStats]
    injector: Callable[[T], FaultInjector]
    describe: Callable[[int], dict[str, Any]]  # how a client reaches tenant n (known without building it)
    route: Callable[[Scope, bytes | None], Routed | None]  # the tenant a CRM request is for
    needs_body: Callable[[Scope], bool]  # route needs the request body (a login names the account)
    unknown: Callable[[Scope], Response]  # the CRM's own answer to a request no tenant claims


class TenantServer(Generic[T]):
    """The ASGI app of a multi-tenant sandbox: routes each request to its tenant, builds tenants lazily."""

    def __init__(self, spec: TenantSpec[T], clock: SandboxClock, faults: FaultConfig | None = None) -> None:
        if spec.count < 1:
            raise ValueError(f"at least one of the {spec.plural}")
        self.spec = spec
        self.clock = clock
        self.faults = faults or FaultConfig()
        self._tenants: dict[int, T] = {}
        self._locks = [threading.Lock() for _ in range(spec.count)]
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------------------ tenants

    def tenant(self, index: int) -> T:
        """Tenant ``index`` (0-based), built now if no request needed it yet."""
        if not 0 <= index < self.spec.count:
            raise IndexError(f"no such {self.spec.plural[:-1]}: {index} (0..{self.spec.count - 1})")
        built = self._tenants.get(index)
        if built is not None:
            return built
        with self._locks[index]:
            built = self._tenants.get(index)
            if built is None:
                built = self.spec.build(index)
                self.spec.injector(built).configure(self._faults_of(index))
                with self._lock:
                    self._tenants[index] = built
        return built

    def built(self) -> dict[int, T]:
        with self._lock:
            return dict(self._tenants)

    def _faults_of(self, index: int) -> FaultConfig:
        return replace(self.faults, seed=self.faults.seed + index)

    # ------------------------------------------------------------------------------------------ ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan is off; websockets are not served
        path: str = scope.get("path", "")
        mine = f"{CONTROL}/{self.spec.plural}"
        if path == mine or path.startswith(mine + "/"):
            await self._tenant_control(scope, receive, send, path[len(mine) :])
            return
        if path == CONTROL or path.startswith(CONTROL + "/"):
            response = await self._fleet_control(scope, receive, path[len(CONTROL) :])
            await response(scope, receive, send)
            return
        body: bytes | None = None
        if self.spec.needs_body(scope):
            body = await _read_body(receive)
            receive = _replay(body, receive)
        routed = self.spec.route(scope, body)
        if routed is None or not 0 <= routed.index < self.spec.count:
            await self.spec.unknown(scope)(scope, receive, send)
            return
        tenant = await self._tenant_async(routed.index)
        await self.spec.app(tenant)(routed.scope, receive, send)

    async def _tenant_async(self, index: int) -> T:
        built = self._tenants.get(index)
        return built if built is not None else await run_in_threadpool(self.tenant, index)

    async def _tenant_control(self, scope: Scope, receive: Receive, send: Send, rest: str) -> None:
        if rest in ("", "/"):
            if scope["method"] != "GET":
                await _error(405, "GET lists them")(scope, receive, send)
                return
            built = self.built()
            listing = [
                {
                    **self.spec.describe(n),
                    "built": n in built,
                    "requests": self.spec.stats(built[n]).snapshot()["total"] if n in built else 0,
                }
                for n in range(self.spec.count)
            ]
            await JSONResponse({self.spec.plural: listing})(scope, receive, send)
            return
        number, _, tail = rest.lstrip("/").partition("/")
        if not number.isdigit() or not 0 <= int(number) < self.spec.count:
            message = f"no such {self.spec.plural[:-1]}: {number!r} (0..{self.spec.count - 1})"
            await _error(404, message)(scope, receive, send)
            return
        tenant = await self._tenant_async(int(number))
        inner = f"{CONTROL}/{tail}"
        sub = {**scope, "path": inner, "raw_path": inner.encode("latin-1")}
        await self.spec.app(tenant)(sub, receive, send)

    async def _fleet_control(self, scope: Scope, receive: Receive, rest: str) -> Response:
        method = scope["method"]
        built = self.built()
        if rest == "/stats" and method == "GET":
            return JSONResponse(self._stats(built))
        if rest == "/reset-stats" and method == "POST":
            for tenant in built.values():
                self.spec.stats(tenant).reset()
            return Response(status_code=204)
        if rest == "/faults" and method == "GET":
            return JSONResponse(self.faults.to_dict())
        if rest == "/faults" and method == "POST":
            try:
                self.faults = _fault_config(await _read_body(receive))
            except ValueError as exc:
                return _error(400, str(exc))
            for index, tenant in built.items():
                self.spec.injector(tenant).configure(self._faults_of(index))
            return JSONResponse(self.faults.to_dict())
        if rest == "/clock" and method == "GET":
            return JSONResponse(_clock_state(self.clock))
        if rest == "/clock" and method == "POST":
            try:
                when, ticking = _clock_setting(await _read_body(receive))
            except ValueError as exc:
                return _error(400, str(exc))
            self.clock.set(when, ticking=ticking)
            return JSONResponse(_clock_state(self.clock))
        plural = self.spec.plural
        return _error(
            404, f"{CONTROL}{rest}: not a fleet route; per {plural[:-1]}: {CONTROL}/{plural}/N{rest}"
        )

    def _stats(self, built: dict[int, T]) -> dict[str, Any]:
        endpoints: Counter[str] = Counter()
        statuses: Counter[str] = Counter()
        faults: Counter[str] = Counter()
        totals: dict[str, int] = {}
        for index, tenant in sorted(built.items()):
            snapshot = self.spec.stats(tenant).snapshot()
            endpoints.update(snapshot["endpoints"])
            statuses.update(snapshot["statuses"])
            faults.update(self.spec.injector(tenant).counts())
            totals[str(index)] = snapshot["total"]
        return {
            "total": sum(totals.values()),
            "endpoints": dict(endpoints),
            "statuses": dict(statuses),
            "faults": dict(faults),
            self.spec.plural: totals,
        }


def _fault_config(body: bytes) -> FaultConfig:
    """The FaultConfig a ``POST /__sandbox__/faults`` body asks for; ``ValueError`` saying what is wrong."""
    data = json.loads(body or b"null")
    if data is not None and not isinstance(data, dict):
        raise ValueError("body must be a JSON object of fault settings, or null")
    return FaultConfig.from_dict(data or {})


def _clock_setting(body: bytes) -> tuple[datetime | None, bool]:
    """(now, ticking) from a ``POST /__sandbox__/clock`` body; ``ValueError`` saying what is wrong."""
    data = json.loads(body or b"null")
    if not isinstance(data, dict) or "now" not in data:
        raise ValueError('body must be {"now": "<ISO 8601 with offset>" | null, "ticking": false}')
    ticking = data.get("ticking", False)
    if not isinstance(ticking, bool):
        raise ValueError("ticking must be true or false")  # noqa: TRY004 - a 400 for the client, not a bug
    return (None if data["now"] is None else datetime.fromisoformat(str(data["now"]))), ticking


def _clock_state(clock: SandboxClock) -> dict[str, Any]:
    return {"now": clock.now().isoformat(), "real": clock.is_real, "frozen": clock.is_frozen}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, original: Receive) -> Receive:
    """A ``receive`` that hands the already read body to the tenant's app, then passes on what the
    connection says next (a disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await original()

    return receive
