"""The HTTP plumbing every REST route shares: version check, session check, API usage, errors, headers.

A route is a plain function ``handler(call) -> Response`` run in the thread pool (it takes the store lock);
``api_route`` wraps it into a Starlette endpoint that does, in Salesforce's order: unknown API version ->
404 NOT_FOUND; missing/expired token -> 401 INVALID_SESSION_ID; daily budget spent -> 403
REQUEST_LIMIT_EXCEEDED; body parse -> 400 JSON_PARSER_ERROR; then the handler. Every answer carries
``Sforce-Limit-Info: api-usage=used/max`` and ``Content-Type: application/json;charset=UTF-8``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crm_sandbox.salesforce.errors import ApiError, not_found
from crm_sandbox.salesforce.org import SalesforceOrg
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MIN_VERSION = 40
MAX_VERSION = 66
DATA = "/services/data/v{version}"
_VERSION = re.compile(r"^(\d{2})\.0$")


class SfJSON(JSONResponse):
    media_type = "application/json;charset=UTF-8"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True, slots=True)
class Call:
    """One authenticated REST request, as handlers see it."""

    org: SalesforceOrg
    request: Request
    version: str
    user_id: str
    body: Any

    @property
    def params(self) -> dict[str, str]:
        return dict(self.request.path_params)

    def query_param(self, name: str) -> str | None:
        return self.request.query_params.get(name)


Handler = Callable[[Call], Response]


@dataclass(frozen=True, slots=True)
class ApiSpec:
    """One REST resource: its path template, handler and methods (``slash``: also serve ``path/``).

    ``app.py`` turns each into Starlette routes with ``api_route``; the Composite resource dispatches its
    subrequests through the same specs, so a subrequest runs exactly the handler a top-level call would.
    """

    path: str
    handler: Handler
    methods: tuple[str, ...]
    slash: bool = True


def check_version(text: str | None) -> str:
    m = _VERSION.match(text or "")
    if m is None or not MIN_VERSION <= int(m.group(1)) <= MAX_VERSION:
        raise not_found()
    return text or ""


def usage_header(org: SalesforceOrg) -> str:
    return f"api-usage={org.usage.used(org.clock.now())}/{org.usage.limit}"


def api_route(
    org: SalesforceOrg, path: str, handler: Handler, methods: list[str], *, slash: bool = True
) -> list[Route]:
    """The route for ``path`` (and ``path/`` when ``slash``), wrapping ``handler`` in the common checks."""

    async def endpoint(request: Request) -> Response:
        try:
            version = check_version(request.path_params.get("version"))
            user_id = org.authenticate(request.headers.get("authorization"))
            org.usage.spend(org.clock.now())
            body = await _json_body(request)
            response = await run_in_threadpool(handler, Call(org, request, version, user_id, body))
        except ApiError as exc:
            response = exc.response()
            if exc.status == 401:
                response.headers["WWW-Authenticate"] = "Token"
        response.headers["Sforce-Limit-Info"] = usage_header(org)
        return response

    routes = [Route(path, endpoint, methods=methods)]
    if slash:
        routes.append(Route(path + "/", endpoint, methods=methods))
    return routes


async def _json_body(request: Request) -> Any:
    if request.method not in ("POST", "PATCH", "PUT"):
        return None
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ApiError(
            400,
            "JSON_PARSER_ERROR",
            f"Unexpected character: expected a valid value at [line:1, column:{getattr(exc, 'colno', 1)}]",
        ) from None


def no_content() -> Response:
    return Response(status_code=204)
