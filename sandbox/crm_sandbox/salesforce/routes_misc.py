"""Versions, the version root, ``limits``, the OAuth token endpoint and the Salesforce-only control routes."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from crm_sandbox.salesforce.http import MAX_VERSION, MIN_VERSION, Call, SfJSON
from crm_sandbox.salesforce.oauth import OAuthError
from crm_sandbox.salesforce.org import SalesforceOrg
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_RELEASES = {59: "Winter '24", 60: "Spring '24", 61: "Summer '24", 62: "Winter '25", 63: "Spring '25"}


def versions_body() -> list[dict[str, str]]:
    return [
        {"label": _RELEASES.get(v, f"API {v}"), "url": f"/services/data/v{v}.0", "version": f"{v}.0"}
        for v in range(MIN_VERSION, MAX_VERSION + 1)
    ]


async def versions(request: Request) -> Response:
    """``GET /services/data/``: no session needed and no usage header, as Salesforce answers it."""
    return SfJSON(versions_body())


def version_root(call: Call) -> Response:
    base = f"/services/data/v{call.version}"
    names = ("sobjects", "query", "queryAll", "limits", "composite", "search", "recent", "tooling")
    return SfJSON({name: f"{base}/{name}" for name in names})


def limits(call: Call) -> Response:
    org = call.org
    used = org.usage.used(org.clock.now())

    def pair(maximum: int, remaining: int | None = None) -> dict[str, int]:
        return {"Max": maximum, "Remaining": maximum if remaining is None else remaining}

    body: dict[str, Any] = {
        "ConcurrentAsyncGetReportInstances": pair(200),
        "ConcurrentSyncReportRuns": pair(20),
        "DailyApiRequests": pair(org.usage.limit, max(0, org.usage.limit - used)),
        "DailyAsyncApexExecutions": pair(250000),
        "DailyBulkApiBatches": pair(15000),
        "DailyBulkV2QueryFileStorageMB": pair(976562),
        "DailyBulkV2QueryJobs": pair(10000),
        "DailyGenericStreamingApiEvents": pair(10000),
        "DailyStreamingApiEvents": pair(200000),
        "DataStorageMB": pair(1024),
        "FileStorageMB": pair(1024),
        "HourlyTimeBasedWorkflow": pair(50),
        "MassEmail": pair(10),
        "SingleEmail": pair(15),
    }
    return SfJSON(body)


def token_route(org: SalesforceOrg) -> Route:
    async def token(request: Request) -> Response:
        # parsed by hand: Starlette's request.form() needs python-multipart, which is not a dependency
        fields = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
        instance_url = org.instance_url or f"{request.url.scheme}://{request.headers.get('host', '')}"
        try:
            body = org.token_endpoint.grant(fields, request.headers.get("authorization"), instance_url)
        except OAuthError as exc:
            return JSONResponse({"error": exc.error, "error_description": exc.description}, status_code=400)
        return SfJSON(body)

    return Route("/services/oauth2/token", token, methods=["POST"])


def salesforce_control_routes(org: SalesforceOrg) -> list[Route]:
    """``/__sandbox__/salesforce/...``: expire every session, set the lock-row fault, set API usage."""

    async def expire_sessions(request: Request) -> Response:
        return JSONResponse({"revoked": org.tokens.revoke_all()})

    async def lock_faults(request: Request) -> Response:
        body = await request.json()
        try:
            org.sf_faults.configure(float(body.get("unable_to_lock_row_rate", 0.0)), int(body.get("seed", 0)))
        except (TypeError, ValueError, AttributeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"unable_to_lock_row_rate": org.sf_faults.unable_to_lock_row_rate})

    async def api_usage(request: Request) -> Response:
        body = await request.json()
        try:
            if "limit" in body:
                org.usage.limit = int(body["limit"])
            if "used" in body:
                org.usage.set_used(int(body["used"]), org.clock.now())
        except (TypeError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"used": org.usage.used(org.clock.now()), "limit": org.usage.limit})

    prefix = "/__sandbox__/salesforce"
    return [
        Route(f"{prefix}/expire-sessions", expire_sessions, methods=["POST"]),
        Route(f"{prefix}/lock-faults", lock_faults, methods=["POST"]),
        Route(f"{prefix}/api-usage", api_usage, methods=["POST"]),
    ]
