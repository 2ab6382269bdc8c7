"""The portal's front door (pure ASGI): Bearer-token check, API limits and their headers, fault bodies.

Runs before routing, as HubSpot's gateway does: a request without a known token gets 401
``INVALID_AUTHENTICATION`` whatever its path; one over a limit gets 429 with ``errorType: RATE_LIMIT`` and
the ``policyName`` that refused it. Admitted non-search responses carry the ``X-HubSpot-RateLimit-*``
headers. Paths under ``/__sandbox__/`` bypass all of it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from crm_sandbox.clock import SandboxClock
from crm_sandbox.faults import CONTROL_PREFIX, Fault, FaultInjector, FaultRenderers
from crm_sandbox.hubspot.errors import UNAUTHORIZED_MESSAGE, error_body, json_response
from crm_sandbox.hubspot.ratelimit import LIMIT_MESSAGES, RateLimiter
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HubSpotGateway", "hubspot_fault_renderers", "is_search"]

_GATEWAY_MESSAGES = {
    500: "internal error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def is_search(method: str, path: str) -> bool:
    """CRM object search requests (limited per second, exempt from the 10-second window)."""
    return method == "POST" and path.startswith("/crm/v3/objects/") and path.rstrip("/").endswith("/search")


def rate_limit_response(policy: str, headers: dict[str, str], group: str) -> Response:
    body = error_body("RATE_LIMITS", LIMIT_MESSAGES[policy], errorType="RATE_LIMIT", policyName=policy)
    if policy == "TEN_SECONDLY_ROLLING":
        body["groupName"] = group
    return json_response(body, 429, headers)


def hubspot_fault_renderers(limiter: RateLimiter, injector: FaultInjector | None = None) -> FaultRenderers:
    """Injected 5xx and 429 answers worded as HubSpot words them.

    An injected 429 carries ``Retry-After`` when the fault config's ``retry_after_s`` (else the limits'
    ``retry_after_s``) asks for it.
    """

    def server_error(scope: Scope, fault: Fault) -> Response:
        status = fault.status or 500
        body = error_body("INTERNAL_ERROR", _GATEWAY_MESSAGES.get(status, "internal error"))
        return json_response(body, status)

    def rate_limited(scope: Scope, fault: Fault) -> Response:
        config = limiter.config
        headers = {
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Max": str(config.per_ten_seconds),
            "X-HubSpot-RateLimit-Remaining": "0",
        }
        fault_retry_after = injector.config.retry_after_s if injector is not None else None
        retry_after = fault_retry_after if fault_retry_after is not None else config.retry_after_s
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        return rate_limit_response(
            "TEN_SECONDLY_ROLLING", headers, "publicapi:sandbox-api-calls-ten-secondly"
        )

    return FaultRenderers(server_error=server_error, rate_limited=rate_limited)


class HubSpotGateway:
    """ASGI middleware: authenticate, rate-limit, then pass on with the limit headers added."""

    def __init__(
        self,
        app: ASGIApp,
        tokens: Callable[[], dict[str, datetime]],
        limiter: RateLimiter,
        injector: FaultInjector,
        clock: SandboxClock,
        portal_id: int,
    ) -> None:
        self.app = app
        self.tokens = tokens  # token -> issued at
        self.limiter = limiter
        self.injector = injector
        self.clock = clock
        self.group = f"publicapi:private-app-api-calls-ten-secondly:{portal_id}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        token = _bearer(scope)
        issued = self.tokens().get(token) if token is not None else None
        if token is None or issued is None:
            body = error_body("INVALID_AUTHENTICATION", UNAUTHORIZED_MESSAGE)
            await json_response(body, 401)(scope, receive, send)
            return
        now = self.clock.now()
        if self.injector.token_expired(issued, now):
            ttl = self.injector.config.token_ttl_s or 0
            ago = int((now - issued).total_seconds() - ttl)
            body = error_body(
                "EXPIRED_AUTHENTICATION",
                f"The OAuth token used to make this call expired {ago} second(s) ago.",
            )
            await json_response(body, 401)(scope, receive, send)
            return
        decision = self.limiter.check(token, search=is_search(scope["method"], path))
        if not decision.allowed:
            assert decision.policy is not None
            await rate_limit_response(decision.policy, decision.headers, self.group)(scope, receive, send)
            return
        if not decision.headers:
            await self.app(scope, receive, send)
            return
        extra = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in decision.headers.items()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            text = value.decode("latin-1")
            if text[:7].lower() == "bearer ":
                return text[7:].strip() or None
            return None
    return None
