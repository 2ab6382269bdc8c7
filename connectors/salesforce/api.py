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
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import structlog
from simple_salesforce.api import Salesforce

from connectors.errors import FixConfiguration
from connectors.retry import RetrySettings, call_with_retry
from connectors.salesforce.auth import AccessToken, TokenSource
from connectors.salesforce.errors import SessionExpired, translate
from connectors.salesforce.limits import ApiBudget
from connectors.salesforce.session import TimeoutSession

T = TypeVar("T")
Record = Mapping[str, Any]

log = structlog.get_logger(__name__)


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
    ) -> None:
        self.session = session
        self.tokens = tokens
        self.budget = budget
        self._version = api_version
        self._retry = retry
        self._sleep = sleep
        self._query_headers = {"Sforce-Query-Options": f"batchSize={query_batch_size}"}
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

    def restful(self, path: str, *, method: str = "GET", retry: bool = True, **kwargs: Any) -> Any:
        """A REST call under ``/services/data/vXX.X/`` (composite, limits, describe)."""
        return self.call(
            path.split("?", 1)[0], lambda sf: sf.restful(path, method=method, **kwargs), retry=retry
        )
