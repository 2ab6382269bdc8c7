"""The one place where simple-salesforce and requests exceptions become ``connectors.errors``.

simple-salesforce raises one exception class per HTTP status (``SalesforceMalformedRequest`` for 400,
``SalesforceRefusedRequest`` for 403, ...) and leaves transport errors as raw ``requests`` exceptions. Its
messages embed the URL and "Response content: ...", which can hold personal data, so nothing here ever
uses ``str(exc)``: a translated message carries the resource name, the HTTP status and the Salesforce
error codes, nothing else.

What the caller should do next decides the class:

* ``RetryLater``: 5xx, UNABLE_TO_LOCK_ROW, QUERY_TIMEOUT, an expired query locator, timeouts, dropped
  connections, truncated bodies. The retry layer retries them.
* ``RateLimited``: REQUEST_LIMIT_EXCEEDED for too many concurrent long-running requests
  ("ConcurrentPerOrgLongTxn Limit exceeded."): it clears as the org's other long requests finish, so the
  retry layer backs off and retries (Salesforce sends no ``Retry-After``).
* ``BudgetExhausted``: REQUEST_LIMIT_EXCEEDED otherwise (the org's daily allocation: "TotalRequests Limit
  exceeded."): never retried, the cycle stops and resumes later.
* ``FixConfiguration``: authentication, permissions, an unknown field or object (setup has not run, or
  field-level security is missing), a TLS certificate that does not verify.
* ``SkipRecord``: one record is gone or ambiguous.

A 401 INVALID_SESSION_ID is ``SessionExpired``, which ``api.SalesforceClient`` handles by fetching a new token
and rebuilding the client; it only escapes when renewal cannot help.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import requests
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from connectors.errors import (
    BudgetExhausted,
    CrmError,
    FixConfiguration,
    RateLimited,
    RetryLater,
    SkipRecord,
)

TRANSIENT_CODES = frozenset(
    {
        "UNABLE_TO_LOCK_ROW",
        "QUERY_TIMEOUT",
        "INVALID_QUERY_LOCATOR",
        "SERVER_UNAVAILABLE",
        "REQUEST_RUNNING_TOO_LONG",
    }
)
BUDGET_CODES = frozenset({"REQUEST_LIMIT_EXCEEDED", "TOTAL_REQUESTS_LIMIT_EXCEEDED"})
SETUP_CODES = frozenset(
    {"INVALID_FIELD", "INVALID_TYPE", "NO_SUCH_COLUMN", "INVALID_FIELD_FOR_INSERT_UPDATE"}
)
GONE_CODES = frozenset({"ENTITY_IS_DELETED", "NOT_FOUND", "INVALID_CROSS_REFERENCE_KEY", "MALFORMED_ID"})


# what simple-salesforce raises for a status (its util.exception_handler)
_SDK_ERROR_BY_STATUS: Mapping[int, type[SalesforceError]] = {
    300: SalesforceMoreThanOneRecord,
    400: SalesforceMalformedRequest,
    401: SalesforceExpiredSession,
    403: SalesforceRefusedRequest,
    404: SalesforceResourceNotFound,
}


def sdk_error(url: str, status: int, resource: str, content: bytes) -> SalesforceError:
    """The simple-salesforce exception a request alone would raise for ``status`` (a failed Composite
    subrequest is translated like one), for ``translate``."""
    return _SDK_ERROR_BY_STATUS.get(status, SalesforceGeneralError)(url, status, resource, content)


class SessionExpired(CrmError):
    """Salesforce rejected the access token (401 INVALID_SESSION_ID): fetch a new one and try again."""


def error_codes(content: Any) -> tuple[str, ...]:
    """The ``errorCode`` / ``statusCode`` values of a Salesforce error body (a list of dicts), else ()."""
    if isinstance(content, (str, bytes)):
        try:
            content = json.loads(content)
        except ValueError:
            return ()
    items: Iterable[Any] = content if isinstance(content, list) else [content]
    codes: list[str] = []
    for item in items:
        if isinstance(item, Mapping):
            code = item.get("errorCode") or item.get("statusCode") or item.get("error")
            if isinstance(code, str):
                codes.append(code)
    return tuple(codes)


def _is_concurrency_limit(content: Any) -> bool:
    """Whether an error body says "too many concurrent long-running requests" (not the daily allocation)."""
    if isinstance(content, (str, bytes)):
        try:
            content = json.loads(content)
        except ValueError:
            return False
    items: Iterable[Any] = content if isinstance(content, list) else [content]
    return any(
        isinstance(item, Mapping) and "ConcurrentPerOrg" in str(item.get("message") or "") for item in items
    )


def _describe(resource: str, status: int | None, codes: tuple[str, ...]) -> str:
    where = f"salesforce {resource}" if resource else "salesforce"
    code_text = ",".join(codes) if codes else "no error code"
    return f"{where}: HTTP {status}: {code_text}"


def translate(exc: BaseException, *, resource: str = "") -> CrmError:
    """The ``connectors.errors`` exception for a simple-salesforce or requests exception."""
    if isinstance(exc, CrmError):
        return exc
    if isinstance(exc, SalesforceAuthenticationFailed):
        return FixConfiguration(f"salesforce authentication failed: {exc.code}: check the auth settings")
    if isinstance(exc, SalesforceError):
        return _translate_http(exc, resource or str(exc.resource_name or ""))
    if isinstance(exc, requests.exceptions.SSLError):
        if "CERTIFICATE_VERIFY_FAILED" in repr(exc.args):
            return FixConfiguration(
                f"salesforce {resource}: the TLS certificate does not verify: set ca_file to the CA bundle "
                "of the org's proxy or sandbox"
            )
        return RetryLater(f"salesforce {resource}: TLS connection broken")
    if isinstance(exc, requests.exceptions.Timeout):
        return RetryLater(f"salesforce {resource}: timed out")
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        return RetryLater(f"salesforce {resource}: connection dropped")
    if isinstance(exc, (requests.exceptions.JSONDecodeError, json.JSONDecodeError)):
        return RetryLater(f"salesforce {resource}: incomplete response body")
    if isinstance(exc, requests.exceptions.RequestException):
        return RetryLater(f"salesforce {resource}: {type(exc).__name__}")
    raise exc


def _translate_http(exc: SalesforceError, resource: str) -> CrmError:
    status: int = int(exc.status)
    codes = error_codes(exc.content)
    message = _describe(resource, status, codes)
    if isinstance(exc, SalesforceExpiredSession) or status == 401:
        return SessionExpired(message)
    if BUDGET_CODES.intersection(codes) and _is_concurrency_limit(exc.content):
        return RateLimited(message + ": too many concurrent long-running requests in the org", status=status)
    if BUDGET_CODES.intersection(codes):
        return BudgetExhausted(message + ": the org's API allocation is spent; resuming later")
    if TRANSIENT_CODES.intersection(codes) or status >= 500:
        return RetryLater(message, status=status)
    if status in (408, 409, 429):
        return RetryLater(message, status=status)
    if isinstance(exc, SalesforceRefusedRequest):
        return FixConfiguration(
            message + ": the integration user lacks a permission (API Enabled, object access)"
        )
    if SETUP_CODES.intersection(codes):
        return FixConfiguration(message + ": a field or object is missing; run `followup setup salesforce`")
    if isinstance(exc, (SalesforceResourceNotFound, SalesforceMoreThanOneRecord)) or GONE_CODES.intersection(
        codes
    ):
        record_id = str(exc.url).rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
        return SkipRecord(message, object_type=resource, record_id=record_id)
    if isinstance(exc, (SalesforceMalformedRequest, SalesforceGeneralError)):
        return FixConfiguration(message + ": Salesforce refused the request")
    return FixConfiguration(message)
