"""The connector's single door to Salesforce: every call is budgeted, retried, re-authenticated, translated.

``SalesforceApi.call(resource, fn)`` runs ``fn(client)`` with a ``simple_salesforce.Salesforce`` client and:

1. refuses up front when the API budget is spent (``limits.ApiBudget.check``: ``BudgetExhausted``);
2. translates any exception through ``errors.translate`` (one place, no response bodies);
3. on 401 INVALID_SESSION_ID fetches a new token, rebuilds the client and repeats the call once, at once;
4. retries ``RetryLater`` with ``connectors.retry.call_with_retry`` (the only retry layer; the session
   has urllib3 retries off and simple-salesforce only retries 401s of clients it logged in itself, which
   ours never are).

``query_pages`` follows ``nextRecordsUrl`` one page per call (each page retried on its own) with the
largest batch size Salesforce accepts, so memory stays at one page.

``query_each`` runs several independent queries (id-chunked look-ups: an ``IN (...)`` list carries at most
``ids_per_query`` ids because of the URI limit) up to ``queries_per_call`` at a time as query subrequests of
one Composite call (``POST composite``: one API call for up to 5 query operations), continuing every
unfinished query's ``nextRecordsUrl`` in later Composite calls, again up to 5 pages per call. Each call goes
through ``call`` (budget, translation, re-authentication, retries: a failed call is repeated whole, and
records are only kept from a call that succeeded, so a retry never duplicates rows); a failed subrequest is
translated like the same request on its own (by status and error code).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode

import structlog
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from connectors.errors import FixConfiguration, RetryLater
from connectors.retry import RetrySettings, call_with_retry
from connectors.salesforce.auth import AccessToken, TokenSource
from connectors.salesforce.errors import SessionExpired, translate
from connectors.salesforce.limits import ApiBudget
from connectors.salesforce.session import TimeoutSession

T = TypeVar("T")
Record = Mapping[str, Any]

log = structlog.get_logger(__name__)

MAX_QUERIES_PER_CALL = 5  # Composite: at most 5 query operations (query, queryAll, query more) per call
# what simple-salesforce raises for a status (its util.exception_handler), for failed subrequests
_ERROR_BY_STATUS: Mapping[int, type[SalesforceError]] = {
    300: SalesforceMoreThanOneRecord,
    400: SalesforceMalformedRequest,
    401: SalesforceExpiredSession,
    403: SalesforceRefusedRequest,
    404: SalesforceResourceNotFound,
}


class SalesforceApi:
    """Holds the current client and token; rebuilds both when Salesforce rejects the session."""

    def __init__(
        self,
        *,
        session: TimeoutSession,
        tokens: TokenSource,
        budget: ApiBudget,
        api_version: str,
        retry: RetrySettings,
        query_batch_size: int,
        sleep: Callable[[float], None],
        queries_per_call: int = MAX_QUERIES_PER_CALL,
    ) -> None:
        self.session = session
        self.tokens = tokens
        self.budget = budget
        self._version = api_version
        self._retry = retry
        self._sleep = sleep
        self._query_headers = {"Sforce-Query-Options": f"batchSize={query_batch_size}"}
        self._queries_per_call = max(1, min(MAX_QUERIES_PER_CALL, queries_per_call))
        self._client: Salesforce | None = None
        self._token: AccessToken | None = None
        self.renewals = 0

    @property
    def client(self) -> Salesforce:
        """The current client, authenticating on first use."""
        if self._client is None:
            self._renew()
        assert self._client is not None
        return self._client

    def _renew(self) -> None:
        token = call_with_retry(self.tokens.fetch, self._retry, sleep=self._sleep)
        self._token = token
        self._client = Salesforce(
            instance_url=token.instance_url,
            session_id=token.value,
            version=self._version,
            session=self.session,
        )

    def call(self, resource: str, fn: Callable[[Salesforce], T], *, retry: bool = True) -> T:
        """``fn(client)`` with budget check, translation, one re-authentication and retries.

        ``retry=False`` for callers that run their own ``call_with_retry`` loop around several calls
        (``composite.CollectionWriter``), so that retries never nest and multiply.
        """

        def attempt() -> T:
            self.budget.check()
            client = self.client
            try:
                return fn(client)
            except Exception as exc:  # translated in one place; nothing else is caught here
                error = translate(exc, resource=resource)
            if not isinstance(error, SessionExpired):
                raise error from None
            if not self.tokens.renewable:
                raise FixConfiguration(f"salesforce {resource}: the access token expired; provide a new one")
            log.info("salesforce_session_renewed", resource=resource)
            self.renewals += 1
            self._renew()
            self.budget.check()
            try:
                return fn(self.client)
            except Exception as exc:
                error = translate(exc, resource=resource)
            if isinstance(error, SessionExpired):
                raise FixConfiguration(
                    f"salesforce {resource}: a fresh token was rejected at once; check the user's access"
                ) from None
            raise error from None

        if not retry:
            return attempt()
        return call_with_retry(attempt, self._retry, sleep=self._sleep)

    def query_pages(self, soql: str, *, include_deleted: bool = False) -> Iterator[list[dict[str, Any]]]:
        """Every page of a SOQL query (``queryAll`` when ``include_deleted``), one API call per page."""
        resource = "queryAll" if include_deleted else "query"
        page = self.call(
            resource,
            lambda sf: sf.query(soql, include_deleted=include_deleted, headers=self._query_headers),
        )
        while True:
            yield list(page.get("records") or [])
            next_url = page.get("nextRecordsUrl")
            if page.get("done", True) or not next_url:
                return
            page = self.more(str(next_url), resource=resource)

    def more(self, next_records_url: str, *, resource: str = "query") -> dict[str, Any]:
        """The page behind a ``nextRecordsUrl`` (also for child relationship sets that were cut off)."""
        result: dict[str, Any] = self.call(
            resource,
            lambda sf: sf.query_more(next_records_url, identifier_is_url=True, headers=self._query_headers),
        )
        return result

    def query_records(self, soql: str, *, include_deleted: bool = False) -> Iterator[dict[str, Any]]:
        """The records of every page of a query."""
        for page in self.query_pages(soql, include_deleted=include_deleted):
            yield from page

    def query_each(
        self, queries: Sequence[str], *, include_deleted: bool = False
    ) -> Iterator[list[dict[str, Any]]]:
        """The records of each query, in order, bundling up to ``queries_per_call`` pages per API call.

        One query, or bundling turned off (``queries_per_call`` 1), is plain ``query_records``.
        """
        if len(queries) <= 1 or self._queries_per_call == 1:
            for text in queries:
                yield list(self.query_records(text, include_deleted=include_deleted))
            return
        resource = "queryAll" if include_deleted else "query"
        root = f"/services/data/v{self._version}/{resource}/?"
        pending = deque((number, root + urlencode({"q": text})) for number, text in enumerate(queries))
        records: list[list[dict[str, Any]]] = [[] for _ in queries]
        finished = [False] * len(queries)
        yielded = 0
        while pending:
            bundle = [pending.popleft() for _ in range(min(self._queries_per_call, len(pending)))]
            pages = self._pages_in_one_call([url for _, url in bundle], resource)
            for (number, _), page in zip(bundle, pages, strict=True):
                records[number].extend(page.get("records") or [])
                next_url = page.get("nextRecordsUrl")
                if not page.get("done", True) and next_url:
                    pending.append((number, str(next_url)))
                else:
                    finished[number] = True
            while yielded < len(queries) and finished[yielded]:
                yield records[yielded]
                records[yielded] = []
                yielded += 1

    def _pages_in_one_call(self, urls: Sequence[str], resource: str) -> list[dict[str, Any]]:
        """The pages behind ``urls`` (query or ``nextRecordsUrl`` paths), as subrequests of one Composite."""
        body = {
            "allOrNone": False,
            "compositeRequest": [
                {"method": "GET", "url": url, "referenceId": f"page{n}", "httpHeaders": self._query_headers}
                for n, url in enumerate(urls)
            ],
        }
        where = f"composite {resource}"

        def send(sf: Salesforce) -> list[dict[str, Any]]:
            answer = sf.restful("composite", method="POST", json=body)
            by_reference = {
                str(item.get("referenceId")): item
                for item in (answer or {}).get("compositeResponse") or []
                if isinstance(item, Mapping)
            }
            return [
                _page_of(by_reference.get(f"page{n}"), f"https://{sf.sf_instance}{url}", where)
                for n, url in enumerate(urls)
            ]

        return self.call(where, send)

    def restful(self, path: str, *, method: str = "GET", retry: bool = True, **kwargs: Any) -> Any:
        """A REST call under ``/services/data/vXX.X/`` (composite, limits, describe)."""
        return self.call(
            path.split("?", 1)[0], lambda sf: sf.restful(path, method=method, **kwargs), retry=retry
        )


def _page_of(item: Mapping[str, Any] | None, url: str, resource: str) -> dict[str, Any]:
    """One subrequest's query page, or the simple-salesforce exception the same request alone would raise."""
    if item is None:
        raise RetryLater(f"salesforce {resource}: a subrequest is missing from the composite response")
    status = int(item.get("httpStatusCode") or 0)
    body = item.get("body")
    if status >= 300 or not isinstance(body, Mapping):
        error = _ERROR_BY_STATUS.get(status, SalesforceGeneralError)
        raise error(url, status, resource, json.dumps(body).encode())  # codes read as from the wire
    return dict(body)
