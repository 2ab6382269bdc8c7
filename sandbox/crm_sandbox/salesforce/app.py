"""The Starlette application of the Salesforce sandbox: routes, error pages and middleware.

Middleware, outermost first: request counting (``crm_sandbox.stats``), then fault injection
(``crm_sandbox.faults``) with Salesforce's renderings: a 500 is ``UNKNOWN_EXCEPTION``, a 503
``SERVER_UNAVAILABLE``, 502/504 an HTML page as a load balancer would send, and a rate-limit storm is
403 ``REQUEST_LIMIT_EXCEEDED`` "ConcurrentPerOrgLongTxn Limit exceeded." (Salesforce never answers 429).
The OAuth endpoint is exempt from faults; sandbox control routes always are.
"""

from __future__ import annotations

from crm_sandbox.control import control_routes
from crm_sandbox.faults import Fault, FaultMiddleware, FaultRenderers
from crm_sandbox.salesforce import composite, routes_composite, routes_misc, routes_query, routes_sobjects
from crm_sandbox.salesforce.errors import ApiError
from crm_sandbox.salesforce.http import DATA, ApiSpec, api_route
from crm_sandbox.salesforce.metadata import metadata_route
from crm_sandbox.salesforce.org import SalesforceOrg
from crm_sandbox.stats import RequestStatsMiddleware
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Scope


def _server_error(scope: Scope, fault: Fault) -> Response:
    status = fault.status or 500
    if status == 500:
        return ApiError(
            500,
            "UNKNOWN_EXCEPTION",
            "An unexpected error occurred. Please include this ErrorId if you contact support: "
            "1203412349-12345 (-1234567890)",
        ).response()
    if status == 503:
        return ApiError(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable.").response()
    return HTMLResponse(f"<html><body><h1>{status} Bad Gateway</h1></body></html>", status_code=status)


def _rate_limited(scope: Scope, fault: Fault) -> Response:
    return ApiError(403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.").response()


def api_specs() -> list[ApiSpec]:
    """The REST resources behind the session check, in matching order (shared with the Composite resource)."""
    sob = f"{DATA}/sobjects/{{sobject}}"
    return [
        ApiSpec(DATA, routes_misc.version_root, ("GET",)),
        ApiSpec(f"{DATA}/limits", routes_misc.limits, ("GET",)),
        ApiSpec(f"{DATA}/query", routes_query.query, ("GET",)),
        ApiSpec(f"{DATA}/queryAll", routes_query.query_all, ("GET",)),
        ApiSpec(f"{DATA}/query/{{locator}}", routes_query.query_more, ("GET",), slash=False),
        ApiSpec(f"{DATA}/queryAll/{{locator}}", routes_query.query_more, ("GET",), slash=False),
        ApiSpec(f"{DATA}/sobjects", routes_sobjects.list_sobjects, ("GET",)),
        ApiSpec(f"{DATA}/composite/sobjects", routes_composite.collections, ("POST", "PATCH", "DELETE")),
        ApiSpec(sob, routes_sobjects.sobject_root, ("GET", "POST")),
        ApiSpec(f"{sob}/describe", routes_sobjects.describe, ("GET",)),
        ApiSpec(f"{sob}/updated", routes_sobjects.updated, ("GET",)),
        ApiSpec(f"{sob}/deleted", routes_sobjects.deleted, ("GET",)),
        ApiSpec(f"{sob}/{{record_id}}", routes_sobjects.record, ("GET", "PATCH", "DELETE")),
        ApiSpec(
            f"{sob}/{{field}}/{{value:path}}",
            routes_sobjects.by_external_id,
            ("GET", "PATCH", "DELETE"),
            slash=False,
        ),
    ]


def _routes(org: SalesforceOrg) -> list[BaseRoute]:
    specs = api_specs()
    composite_route = ApiSpec(f"{DATA}/composite", composite.endpoint(composite.Dispatcher(specs)), ("POST",))
    routes: list[BaseRoute] = [
        Route("/services/data", routes_misc.versions, methods=["GET"]),
        Route("/services/data/", routes_misc.versions, methods=["GET"]),
        routes_misc.token_route(org),
        *metadata_route(org),
    ]
    for spec in (*specs, composite_route):
        routes.extend(api_route(org, spec.path, spec.handler, list(spec.methods), slash=spec.slash))
    return routes


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return ApiError(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{request.method}' not allowed.").response()
    return ApiError(exc.status_code, "NOT_FOUND", "The requested resource does not exist").response()


def build_app(org: SalesforceOrg) -> Starlette:
    """The ASGI app serving ``org``; pass it to ``crm_sandbox.server.serve_in_thread`` with the TLS files."""
    # Salesforce's own control routes sit under /__sandbox__/salesforce/, so they go before the shared mount.
    routes = [
        *routes_misc.salesforce_control_routes(org),
        *control_routes(lambda: org.store, org.injector, org.stats, org.clock),
        *_routes(org),
    ]
    renderers = FaultRenderers(server_error=_server_error, rate_limited=_rate_limited)
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestStatsMiddleware, stats=org.stats, routes=routes),
            Middleware(
                FaultMiddleware,
                injector_provider=lambda: org.injector,
                renderers=renderers,
                exempt_prefixes=("/services/oauth2/",),
            ),
        ],
        exception_handlers={404: _http_error, 405: _http_error},
    )
