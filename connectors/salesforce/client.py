"""The connector's single door to Salesforce: every call is budgeted, retried, re-authenticated, translated.

``SalesforceClient.call(resource, fn)`` runs ``fn(sdk)`` with a ``simple_salesforce.Salesforce`` client and:

1. refuses up front when the API budget is spent (``limits.ApiBudget.check``: ``BudgetExhausted``), and
   calls the apply's guard when one is set (``connectors/call_guard.py``: the worker's lease check), before
   every attempt;
2. translates any exception through ``errors.translate`` (the only place that does: the token requests of
   ``auth.TokenSource`` and the Metadata API calls of ``setup`` come through here too);
3. on 401 INVALID_SESSION_ID fetches a new token, rebuilds the client and repeats the call once, at once;
4. retries ``RetryLater`` with ``connectors.retry.call_with_retry`` (the only retry layer; the session
   has urllib3 retries off and simple-salesforce only retries 401s of clients it logged in itself, which
   ours never are).

``query_pages`` follows ``nextRecordsUrl`` one page per call (each page retried on its own) with the
largest batch size Salesforce accepts, so memory stays at one page.

``query_each`` runs several independent queries (id-chunked look-ups: an ``IN (...)`` list carries at most
``ids_per_query`` ids because of the URI limit) as query subrequests of one Composite call (``POST
composite``: one API call for up to 5 query operations, Query More included). ``chained_pages`` reads one
long query up to 5 consecutive pages per Composite call. Both fill every call the same way
(``_plan_runs``): each query with a known next URL gets one subrequest, and the slots left over continue
queries with chained Query More subrequests, ``GET @{rN.nextRecordsUrl}``, each naming the page before it.

A chained subrequest after a query's last page cannot be resolved (``nextRecordsUrl`` is absent when
``done`` is true), so Salesforce fails it 400 PROCESSING_HALTED, and the ones after it likewise. That, and
only that, is expected (``_pages_of_run``): a subrequest is accepted as "past the end" when the page before
it was the last one (or was itself past the end) and it failed PROCESSING_HALTED; every other failure is
translated like the same request on its own (by status and error code), whatever position it has.

Each Composite call goes through ``call`` (budget, translation, re-authentication, retries): a failed call
is repeated whole, and pages are only handed out from a call that succeeded, so a retry never duplicates
rows. Memory: ``chained_pages`` holds one call's pages (at most ``queries_per_call``) at a time.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode

import structlog
from simple_salesforce.api import Salesforce

from connectors.call_guard import CallGuard
from connectors.errors import FixConfiguration, RetryLater
from connectors.retry import RetrySettings, call_with_retry
from connectors.salesforce.auth import AccessToken, TokenSource
from connectors.salesforce.errors import SessionExpired, error_codes, sdk_error, translate
from connectors.salesforce.limits import ApiBudget
from connectors.salesforce.session import TimeoutSession

T = TypeVar("T")
Record = Mapping[str, Any]

log = structlog.get_logger(__name__)

MAX_QUERIES_PER_CALL = 5  # Composite: at most 5 query operations (query, queryAll, query more) per call


class SalesforceClient:
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
        self._sdk: Salesforce | None = None
        self._token: AccessToken | None = None
        self.renewals = 0
        self.guard = CallGuard()  # the apply's guard (the worker's lease check), run before every request

    @property
    def user_id(self) -> str | None:
        """The integration user's id, once a token says whose it is (static tokens do not)."""
        return self._token.user_id if self._token is not None else None

    @property
    def sdk(self) -> Salesforce:
        """The current simple-salesforce client, authenticating on first use."""
        if self._sdk is None:
            self._renew()
        assert self._sdk is not None
        return self._sdk

    def _fetch_token(self) -> AccessToken:
        try:
            return self.tokens.fetch()
        except Exception as exc:  # a refused or dropped token request: translated here, like any call
            raise translate(exc, resource="oauth2/token") from None

    def _renew(self) -> None:
        token = call_with_retry(self._fetch_token, self._retry, sleep=self._sleep)
        self._token = token
        self._sdk = Salesforce(
            instance_url=token.instance_url,
            session_id=token.value,
            version=self._version,
            session=self.session,
        )

    def call(self, resource: str, fn: Callable[[Salesforce], T], *, retry: bool = True) -> T:
        """``fn(sdk)`` with budget check, translation, one re-authentication and retries.

        ``retry=False`` for callers that run their own ``call_with_retry`` loop around several calls
        (``composite.CollectionWriter``), so that retries never nest and multiply.
        """

        def attempt() -> T:
            self.budget.check()
            sdk = self.sdk
            self.guard.check()  # outside the translation: what it raises propagates as is
            try:
                return fn(sdk)
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
            self.guard.check()  # outside the translation: what it raises propagates as is
            try:
                return fn(self.sdk)
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
        self, queries: Sequence[str], *, include_deleted: bool | Sequence[bool] = False
    ) -> Iterator[list[dict[str, Any]]]:
        """The records of each query, in order, up to ``queries_per_call`` pages per API call.

        ``include_deleted`` is one flag for all queries or one per query (``queryAll`` where true), so
        that a ``queryAll`` and a ``query`` can share a call. A query's records are yielded once it is
        finished and every query before it is. Bundling turned off (``queries_per_call`` 1) is plain
        ``query_records``, one query after the other.
        """
        flags = (
            [include_deleted] * len(queries) if isinstance(include_deleted, bool) else list(include_deleted)
        )
        if len(flags) != len(queries):
            raise ValueError("include_deleted: one flag per query")
        if self._queries_per_call == 1:
            for text, flag in zip(queries, flags, strict=True):
                yield list(self.query_records(text, include_deleted=flag))
            return
        records: list[list[dict[str, Any]]] = [[] for _ in queries]
        finished = [False] * len(queries)
        yielded = 0
        for number, page, last in self._pages(list(zip(queries, flags, strict=True))):
            records[number].extend(page.get("records") or [])
            finished[number] = last
            while yielded < len(queries) and finished[yielded]:
                yield records[yielded]
                records[yielded] = []
                yielded += 1

    def chained_pages(self, soql: str, *, include_deleted: bool = False) -> Iterator[list[dict[str, Any]]]:
        """Every page of one query, up to ``queries_per_call`` consecutive pages per Composite call.

        For the long sequential reads (the full pull, the changed aggregates). The pages of one call are
        handed out before the next call is made, so at most one call's pages are held.
        """
        if self._queries_per_call == 1:
            yield from self.query_pages(soql, include_deleted=include_deleted)
            return
        for _, page, _ in self._pages([(soql, include_deleted)]):
            yield list(page.get("records") or [])

    def chained_records(self, soql: str, *, include_deleted: bool = False) -> Iterator[dict[str, Any]]:
        """The records of ``chained_pages``."""
        for page in self.chained_pages(soql, include_deleted=include_deleted):
            yield from page

    def pages_each(
        self, queries: Sequence[str], *, include_deleted: bool = False
    ) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        """``(query number, records)`` for every page of every query, as they come, up to
        ``queries_per_call`` pages per API call (``query_each`` without holding a query's records)."""
        if self._queries_per_call == 1:
            for number, text in enumerate(queries):
                for records in self.query_pages(text, include_deleted=include_deleted):
                    yield number, records
            return
        for number, page, _ in self._pages([(text, include_deleted) for text in queries]):
            yield number, list(page.get("records") or [])

    def _pages(self, queries: Sequence[tuple[str, bool]]) -> Iterator[tuple[int, dict[str, Any], bool]]:
        """``(query number, page, last page of that query)`` for every page, call after call.

        Within a call the pages come in subrequest order; each query's pages always come in order.
        """
        pending = deque((number, self._query_url(text, flag)) for number, (text, flag) in enumerate(queries))
        deleted = any(flag for _, flag in queries)
        while pending:
            heads = [pending.popleft() for _ in range(min(self._queries_per_call, len(pending)))]
            runs = _plan_runs(heads, self._queries_per_call)
            for (number, _, _), (pages, next_url) in zip(
                runs, self._runs_in_one_call(runs, deleted), strict=True
            ):
                for position, page in enumerate(pages):
                    yield number, page, next_url is None and position == len(pages) - 1
                if next_url is not None:
                    pending.append((number, next_url))

    def _query_url(self, soql: str, include_deleted: bool) -> str:
        resource = "queryAll" if include_deleted else "query"
        return f"/services/data/v{self._version}/{resource}/?" + urlencode({"q": soql})

    def _runs_in_one_call(
        self, runs: Sequence[tuple[int, str, int]], include_deleted: bool
    ) -> list[tuple[list[dict[str, Any]], str | None]]:
        """One Composite call for ``runs`` (query number, first URL, pages to chain): per run, the pages
        read and the next URL to continue from (None once the query is done)."""
        subrequests: list[dict[str, Any]] = []
        for _, url, length in runs:
            first = len(subrequests)
            for step in range(length):
                subrequests.append(
                    {
                        "method": "GET",
                        "url": url if step == 0 else f"@{{r{first + step - 1}.nextRecordsUrl}}",
                        "referenceId": f"r{first + step}",
                        "httpHeaders": self._query_headers,
                    }
                )
        body = {"allOrNone": False, "compositeRequest": subrequests}
        where = f"composite {'queryAll' if include_deleted else 'query'}"

        def send(sf: Salesforce) -> list[tuple[list[dict[str, Any]], str | None]]:
            answer = sf.restful("composite", method="POST", json=body)
            by_reference = {
                str(item.get("referenceId")): item
                for item in (answer or {}).get("compositeResponse") or []
                if isinstance(item, Mapping)
            }
            results = []
            first = 0
            for _, url, length in runs:
                items = [by_reference.get(f"r{first + step}") for step in range(length)]
                results.append(_pages_of_run(items, f"https://{sf.sf_instance}{url}", where))
                first += length
            return results

        return self.call(where, send)

    def data_path(self, path: str) -> str:
        """``path`` under ``/services/data/vXX.X/``, as a Composite subrequest's ``url`` names it."""
        return f"/services/data/v{self._version}/{path}"

    def composite(self, subrequests: Sequence[Mapping[str, Any]], *, where: str) -> list[Mapping[str, Any]]:
        """One ``POST composite`` call (``allOrNone: false``), not retried (the caller's loop retries):
        each subrequest's answer (``httpStatusCode`` and ``body``), in the order of ``subrequests``; a
        subrequest Salesforce did not answer is an empty mapping."""
        body = {"allOrNone": False, "compositeRequest": list(subrequests)}
        answer = self.call(where, lambda sf: sf.restful("composite", method="POST", json=body), retry=False)
        by_reference = {
            str(item.get("referenceId")): item
            for item in (answer or {}).get("compositeResponse") or []
            if isinstance(item, Mapping)
        }
        return [by_reference.get(str(sub["referenceId"])) or {} for sub in subrequests]

    def restful(self, path: str, *, method: str = "GET", retry: bool = True, **kwargs: Any) -> Any:
        """A REST call under ``/services/data/vXX.X/`` (composite, limits, describe)."""
        return self.call(
            path.split("?", 1)[0], lambda sf: sf.restful(path, method=method, **kwargs), retry=retry
        )


def _plan_runs(heads: Sequence[tuple[int, str]], slots: int) -> list[tuple[int, str, int]]:
    """``(query number, URL, pages)`` per head: one page each, the spare slots spread round-robin.

    A spare slot chains one more page of a query (``@{rN.nextRecordsUrl}``). It is a guess: when the query
    ends earlier the subrequest fails PROCESSING_HALTED, which costs nothing (the call is one API call
    whatever it carries), while a right guess saves a call.
    """
    lengths = [1] * len(heads)
    for spare in range(max(0, slots - len(heads))):
        lengths[spare % len(heads)] += 1
    return [(number, url, length) for (number, url), length in zip(heads, lengths, strict=True)]


def _pages_of_run(
    items: Sequence[Mapping[str, Any] | None], url: str, resource: str
) -> tuple[list[dict[str, Any]], str | None]:
    """The pages of one query's chained subrequests and the URL to continue from (None: done).

    Only a subrequest chained after the query's last page may fail, and only with PROCESSING_HALTED (its
    reference has no value); any other failure, anywhere in the run, raises as the request alone would.
    """
    pages: list[dict[str, Any]] = []
    next_url: str | None = None
    for step, item in enumerate(items):
        if step > 0 and next_url is None:
            _expect_past_the_end(item, url, resource)
            continue
        page = _page_of(item, url, resource)
        pages.append(page)
        more = page.get("nextRecordsUrl")
        next_url = str(more) if more and not page.get("done", True) else None
    return pages, next_url


def _expect_past_the_end(item: Mapping[str, Any] | None, url: str, resource: str) -> None:
    """Accept a subrequest chained after the last page: 400 PROCESSING_HALTED, nothing else."""
    status = int(item.get("httpStatusCode") or 0) if item is not None else 0
    if item is not None and status == 400 and "PROCESSING_HALTED" in error_codes(item.get("body")):
        return
    if item is not None and status < 300:
        raise RetryLater(f"salesforce {resource}: a page after the last one came back")
    _page_of(item, url, resource)  # raises the subrequest's own error


def _page_of(item: Mapping[str, Any] | None, url: str, resource: str) -> dict[str, Any]:
    """One subrequest's query page, or the simple-salesforce exception the same request alone would raise."""
    if item is None:
        raise RetryLater(f"salesforce {resource}: a subrequest is missing from the composite response")
    status = int(item.get("httpStatusCode") or 0)
    body = item.get("body")
    if status >= 300 or not isinstance(body, Mapping):
        raise sdk_error(url, status, resource, json.dumps(body).encode())  # codes read as from the wire
    return dict(body)
