"""The one place where HubSpot SDK and urllib3 failures become ``connectors.errors``.

Every generated SDK sub-package (deals, objects.tasks, associations.v4, lists, owners, ...) defines its own
``ApiException`` classes, unrelated to each other (``hubspot/crm/*/exceptions.py`` in
https://github.com/HubSpot/hubspot-api-python), so they are recognised by shape
(``status`` + ``body`` + ``headers``) rather than by class. Transport failures (refused, reset, timed out,
dropped) surface as ``urllib3.exceptions.HTTPError`` because the SDK's urllib3 retry is switched off.

Messages carry the endpoint name, HTTP status and HubSpot's error category, never the token, the URL's
query or the response body (which may hold record contents).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import urllib3.exceptions

from connectors.errors import BudgetExhausted, CrmError, FixConfiguration, RateLimited, RetryLater, SkipRecord

# The window to wait out when a 429 carries no Retry-After
# (https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines): the rolling 10 seconds
# (or what X-HubSpot-RateLimit-Interval-Milliseconds says), the search limit's second.
TEN_SECOND_WINDOW = 10.0
SECONDLY_WINDOW = 1.0


def is_sdk_api_exception(exc: BaseException) -> bool:
    """True for any sub-package's ``ApiException`` (they share a shape, not a class)."""
    return type(exc).__name__.endswith("Exception") and hasattr(exc, "status") and hasattr(exc, "body")


def error_body(exc: BaseException) -> Mapping[str, Any]:
    """HubSpot's JSON error body (category, policyName, ...), or ``{}`` when there is none."""
    raw = getattr(exc, "body", None)
    if isinstance(raw, bytes | bytearray):
        raw = raw.decode("utf-8", "replace")
    if not isinstance(raw, str) or not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _header(exc: BaseException, name: str) -> str | None:
    headers = getattr(exc, "headers", None)
    if headers is None:
        return None
    value = headers.get(name)
    return None if value is None else str(value)


def _retry_after(exc: BaseException) -> float | None:
    """Seconds from a ``Retry-After`` header (HubSpot's docs do not list it; honoured when sent), else None.

    An HTTP date instead of seconds is not something HubSpot is known to send: it is ignored like garbage.
    """
    header = _header(exc, "Retry-After")
    if header is None:
        return None
    try:
        seconds = float(header)
    except ValueError:
        return None
    return seconds if seconds >= 0 and seconds == seconds else None  # not negative, not NaN


def _window(exc: BaseException, body: Mapping[str, Any]) -> float:
    """The limit's period to wait out: a second for search's limit, else the rolling window."""
    policy = str(body.get("policyName", "")).upper()
    if policy == "SECONDLY" or "secondly limit" in str(body.get("message", "")).lower():
        return SECONDLY_WINDOW
    interval = _header(exc, "X-HubSpot-RateLimit-Interval-Milliseconds")
    try:
        milliseconds = float(interval) if interval is not None else None
    except ValueError:
        milliseconds = None
    if milliseconds is not None and 0 < milliseconds <= 3_600_000:
        return milliseconds / 1000
    return TEN_SECOND_WINDOW


def translate_status(status: int, body: Mapping[str, Any], endpoint: str, exc: BaseException) -> CrmError:
    """Map one HTTP failure to the error that names the caller's next move."""
    category = str(body.get("category") or body.get("errorType") or "")
    where = f"HubSpot {endpoint}: HTTP {status}" + (f" {category}" if category else "")
    if status == 429:
        if str(body.get("policyName", "")).upper() == "DAILY":
            return BudgetExhausted(f"{where}: the portal's daily API limit is spent; resume tomorrow")
        return RateLimited(
            f"{where}: rate limited", retry_after=_retry_after(exc), window=_window(exc, body), status=status
        )
    if status == 0 or status >= 500 or status in (408, 423):
        return RetryLater(f"{where}: transient server error", status=status)
    if status == 401:
        return FixConfiguration(f"{where}: the access token is missing, invalid or expired")
    if status == 403:
        scopes = _required_scopes(body)
        hint = f" (needs {', '.join(scopes)})" if scopes else ""
        return FixConfiguration(f"{where}: the app lacks a required scope{hint}")
    message = str(body.get("message", ""))
    if status == 400 and "PROPERTY_DOESNT_EXIST" in message:
        names = sorted(set(_PROPERTY_NAME.findall(message)))
        return FixConfiguration(
            f"{where}: unknown propert{'ies' if len(names) != 1 else 'y'} {', '.join(names) or '?'}; "
            "run `followup setup hubspot` or fix the property names in the settings"
        )
    return HubSpotRejected(where, status=status, category=category, endpoint=endpoint)


_PROPERTY_NAME = re.compile(r'"name\\?"\s*:\s*\\?"([a-z0-9_]+)')


class HubSpotRejected(SkipRecord):
    """HubSpot refused the request as such (400 validation, 404 gone, 409 conflict): do not retry as is."""

    def __init__(self, message: str, *, status: int, category: str, endpoint: str) -> None:
        super().__init__(message, object_type=endpoint, record_id="")
        self.status = status
        self.category = category


def _required_scopes(body: Mapping[str, Any]) -> list[str]:
    scopes: list[str] = []
    for item in body.get("errors") or []:
        if isinstance(item, dict):
            context = item.get("context") or {}
            for key in ("requiredGranularScopes", "requiredScopes"):
                scopes.extend(str(s) for s in context.get(key) or [])
    return scopes


def translate(exc: BaseException, endpoint: str) -> CrmError:
    """Translate an SDK or transport exception raised by a call to ``endpoint`` (e.g. ``deals.search``)."""
    if isinstance(exc, CrmError):
        return exc
    if isinstance(exc, urllib3.exceptions.HTTPError):
        # Refused, reset, dropped mid-response, timed out, or a MaxRetryError wrapping one of these.
        return RetryLater(f"HubSpot {endpoint}: connection failed ({type(exc).__name__})")
    if isinstance(exc, ConnectionError | TimeoutError):
        return RetryLater(f"HubSpot {endpoint}: connection failed ({type(exc).__name__})")
    if is_sdk_api_exception(exc):
        status = int(getattr(exc, "status", 0) or 0)
        return translate_status(status, error_body(exc), endpoint, exc)
    if isinstance(exc, ValueError):
        # A response that is not the JSON HubSpot documents (truncated by a dropped connection, HTML 502).
        return RetryLater(f"HubSpot {endpoint}: unreadable response ({type(exc).__name__})")
    return FixConfiguration(f"HubSpot {endpoint}: unexpected {type(exc).__name__}")
