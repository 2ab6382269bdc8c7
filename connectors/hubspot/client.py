"""The SDK, built once, and the single path every HubSpot call takes.

``hubspot-api-client`` builds a new ``ApiClient`` (and urllib3 pool) on every attribute access such as
``api.crm.deals.search_api`` (discovery_base.py), so the API objects are built once here and reused.

The SDK's own retry is switched off: left alone, urllib3's default ``Retry(3)`` silently retries GET, PUT
and DELETE on 429/503 carrying ``Retry-After`` and retries connection errors (urllib3's ``Retry``,
https://urllib3.readthedocs.io/en/stable/reference/urllib3.util.html#urllib3.util.Retry), which would
stack on top of our tenacity layer and hide 429s from the limiter. ``Retry(total=0, raise_on_status=False,
respect_retry_after_header=False)`` makes every response, 429 included, come back as it is, and every
transport failure raise at once.

Every call goes: limiter.acquire -> the apply's guard, when one is set (``connectors/call_guard.py``: the
worker's lease check; what it raises propagates untranslated and the request is not sent) -> SDK method with
``_preload_content=False`` and ``_request_timeout`` -> count it -> read the ``X-HubSpot-RateLimit-*``
headers -> decode JSON -> translate failures
(errors.py; here and nowhere else, which is why the OAuth refresh call auth.py is given is built here).
``send`` wraps that in ``connectors.retry.call_with_retry``, the only place that waits after a failed
call: a 429 does not also pause the limiter (that was a second, unlogged wait on top of the logged one),
and a refused call's headers only update the daily counts. A caller that looks something up which
may not exist passes ``missing_ok=True``: a 404 then comes back as a ``Response`` with status 404 instead of
being logged as a failed call.

Raw JSON is used rather than the SDK's models: the mapping functions work on the documented wire shape,
and deserialising 100,000 deals into generated models would cost more than the calls.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from urllib3.util.retry import Retry

from connectors.call_guard import CallGuard
from connectors.errors import RetryLater
from connectors.hubspot.auth import RefreshCall, TokenSource
from connectors.hubspot.errors import HubSpotRejected, translate
from connectors.hubspot.limits import RateLimiter
from connectors.retry import RetrySettings, call_with_retry

log = structlog.get_logger(__name__)

T = TypeVar("T")


def no_retry() -> Retry:
    """A urllib3 Retry that never retries and never hides a status (see the module docstring)."""
    return Retry(
        total=0,
        connect=0,
        read=0,
        redirect=0,
        status=0,
        other=0,
        raise_on_status=False,
        respect_retry_after_header=False,
    )


def sdk_configuration_kwargs(host: str, access_token: str | None) -> dict[str, Any]:
    """Keyword arguments for ``hubspot.HubSpot``: our host, our token, and no urllib3 retries."""
    return {"access_token": access_token, "host": host.rstrip("/"), "retry": no_retry()}


def sdk_refresh_call(host: str, timeout: tuple[float, float]) -> RefreshCall:
    """The OAuth refresh-token grant through ``hubspot.oauth.TokensApi`` (no urllib3 retry, bounded
    timeouts), its failures translated like every other call's."""

    def refresh(client_id: str, secret: str, refresh_token: str) -> Mapping[str, Any]:
        from hubspot import HubSpot

        api = HubSpot(**sdk_configuration_kwargs(host, access_token=None)).oauth.tokens_api
        try:
            response = api.create(
                grant_type="refresh_token",
                client_id=client_id,
                client_secret=secret,
                refresh_token=refresh_token,
                _preload_content=False,
                _request_timeout=timeout,
            )
            data = json.loads(response.data or b"{}")
        except Exception as exc:  # any SDK sub-package exception, translated in one place
            raise translate(exc, "oauth.tokens") from None
        return data if isinstance(data, dict) else {}

    return refresh


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]
    body: Any


# Short endpoint name -> attribute path under ``HubSpot(...).crm``.
API_PATHS: dict[str, str] = {
    "deals.basic": "deals.basic_api",
    "deals.batch": "deals.batch_api",
    "deals.search": "deals.search_api",
    "contacts.batch": "contacts.batch_api",
    "contacts.search": "contacts.search_api",
    "objects.basic": "objects.basic_api",
    "objects.batch": "objects.batch_api",
    "objects.search": "objects.search_api",
    "tasks.basic": "objects.tasks.basic_api",
    "tasks.batch": "objects.tasks.batch_api",
    "associations.batch": "associations.v4.batch_api",
    "association_labels": "associations.v4.schema.definitions_api",
    "lists": "lists.lists_api",
    "memberships": "lists.memberships_api",
    "owners": "owners.owners_api",
    "pipelines": "pipelines.pipelines_api",
    "properties": "properties.core_api",
    "property_groups": "properties.groups_api",
}


class HubSpotClient:
    """Sends calls through the limiter, the retry layer and the error translation; counts every request."""

    def __init__(
        self,
        host: str,
        tokens: TokenSource,
        limiter: RateLimiter,
        retry: RetrySettings,
        *,
        timeout: tuple[float, float] = (5.0, 30.0),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        from hubspot import HubSpot

        self._tokens = tokens
        self._token = tokens.token()
        self._sdk = HubSpot(**sdk_configuration_kwargs(host, self._token))
        self._apis: dict[str, Any] = {}
        self.limiter = limiter
        self.retry = retry
        self.sleep = sleep
        self._timeout = timeout
        self.calls: Counter[str] = Counter()
        self.guard = CallGuard()  # the apply's guard (the worker's lease check), run before every request

    def api(self, name: str) -> Any:
        """The SDK API object for a short name (see ``API_PATHS``), built once."""
        api = self._apis.get(name)
        if api is None:
            api = self._sdk.crm
            for part in API_PATHS[name].split("."):
                api = getattr(api, part)
            self._apis[name] = api
        return api

    def _refresh_token(self) -> None:
        token = self._tokens.token()
        if token != self._token:
            self._token = token
            for api in self._apis.values():
                api.api_client.configuration.access_token = token

    def send_once(
        self,
        endpoint: str,
        api: str,
        method: str,
        *args: Any,
        search: bool = False,
        missing_ok: bool = False,
        **kw: Any,
    ) -> Response:
        """One HTTP request, no retry; ``endpoint`` names it in usage counts and error messages.

        ``missing_ok``: a 404 is an answer (``Response.status`` 404, body None), not a failure.
        """
        self._refresh_token()
        self.limiter.acquire(search=search)
        self.guard.check()  # last, just before the request: the shortest window
        self.calls[endpoint] += 1
        fn = getattr(self.api(api), method)
        try:
            raw = fn(*args, _preload_content=False, _request_timeout=self._timeout, **kw)
            status = int(raw.status)
            headers = dict(raw.headers.items())
            data = raw.data
            raw.release_conn()
        except Exception as exc:  # every SDK sub-package's ApiException, urllib3 errors: one translation
            error = translate(exc, endpoint)
            refused_headers = getattr(exc, "headers", None)
            self.limiter.observe(refused_headers, refused=True)
            if missing_ok and isinstance(error, HubSpotRejected) and error.status == 404:
                return Response(404, dict(refused_headers.items()) if refused_headers else {}, None)
            log.info(
                "hubspot_call_failed",
                endpoint=endpoint,
                error=type(error).__name__,
                status=getattr(exc, "status", None),
            )
            raise error from None
        self.limiter.observe(headers)
        try:
            body = json.loads(data) if data else None
        except ValueError:
            raise RetryLater(
                f"HubSpot {endpoint}: unreadable response body (HTTP {status})", status=status
            ) from None
        return Response(status, headers, body)

    def send(self, endpoint: str, api: str, method: str, *args: Any, **kw: Any) -> Response:
        """``send_once`` (the same arguments, ``search`` and ``missing_ok`` included) with the retry layer:
        for reads and idempotent writes only."""
        return self.retrying(lambda: self.send_once(endpoint, api, method, *args, **kw))

    def retrying(self, attempt: Callable[[], T]) -> T:
        """``attempt`` under the retry layer with this client's settings: ``send``, and a write that looks
        before it sends again (write_tasks.py)."""
        return call_with_retry(attempt, self.retry, sleep=self.sleep)

    def close(self) -> None:
        for api in self._apis.values():
            pool = getattr(api.api_client, "rest_client", None)
            manager = getattr(pool, "pool_manager", None)
            if manager is not None:
                manager.clear()
        self._apis.clear()
