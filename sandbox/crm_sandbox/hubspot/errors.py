"""HubSpot's error bodies: ``{"status":"error","message","correlationId","category",...}``.

Handlers raise ``HubSpotError``; the app turns it into the JSON body HubSpot sends, with the content type
``application/json;charset=utf-8`` it uses. Categories and messages follow
https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines.
"""

from __future__ import annotations

import json
import uuid
from types import ModuleType
from typing import Any

from starlette.responses import Response

_orjson: ModuleType | None
try:  # optional speed-up: the sandbox must serve 500+ batch reads a second (bench/bench_hubspot_sandbox.py)
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised where orjson is not installed
    _orjson = None

__all__ = ["HubSpotError", "error_body", "error_response", "json_response"]

_JSON = "application/json;charset=utf-8"
UNAUTHORIZED_MESSAGE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more "
    "details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)


class HubSpotError(Exception):
    """An API error answered with HubSpot's body; ``extra`` adds fields such as ``errors`` or ``context``."""

    def __init__(self, status: int, category: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.extra = extra


def error_body(category: str, message: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
    }
    body.update(extra)
    return body


def dumps(body: Any) -> bytes:
    """Compact UTF-8 JSON, as HubSpot sends it; orjson when installed (several times faster), else json."""
    if _orjson is not None:
        return bytes(_orjson.dumps(body))
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def loads(raw: bytes) -> Any:
    """Parse a request body (raises ``ValueError`` on malformed JSON, whichever parser runs)."""
    if _orjson is not None:
        return _orjson.loads(raw)
    return json.loads(raw)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A compact JSON response, as HubSpot's (no spaces), with its content type."""
    return Response(dumps(body), status_code=status, headers=headers, media_type=_JSON)


def error_response(error: HubSpotError, headers: dict[str, str] | None = None) -> Response:
    return json_response(error_body(error.category, error.message, **error.extra), error.status, headers)


def not_found(message: str = "Resource not found") -> HubSpotError:
    return HubSpotError(404, "OBJECT_NOT_FOUND", message)


def invalid(message: str, **extra: Any) -> HubSpotError:
    return HubSpotError(400, "VALIDATION_ERROR", message, **extra)
