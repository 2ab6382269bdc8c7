"""``SalesforceClient.chained_pages``: up to 5 consecutive pages of one query per Composite call.

Contract tests through the real simple-salesforce against the HTTPS sandbox (the same rows as the
page-by-page read whether the query ends inside a call, exactly at its last subrequest or on its first page;
5xx and dropped connections retried whole without duplicates; a session revoked between two calls renewed;
real errors in a chain translated, never mistaken for the expected end of the query) and unit tests on a
scripted transport for what counts as "past the last page".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from crm_sandbox.faults import FaultConfig
from crm_sandbox.salesforce import SalesforceSandbox, running_salesforce_sandbox

from connectors.errors import FixConfiguration, RetryLater
from connectors.salesforce import SalesforceConnector
from tests.connectors.salesforce.fake_transport import ScriptedSalesforce, body_of, query_page, soql_of
from tests.connectors.salesforce.sandbox_helpers import NOW, close_all, connector, jwt_auth, options

PAGE = 200  # the smallest batch size Salesforce honours: many pages from a small org
TASKS = "SELECT Id, WhatId, Subject, SystemModstamp FROM Task ORDER BY Id LIMIT {limit}"


@pytest.fixture(scope="module")
def box() -> Iterator[SalesforceSandbox]:
    with running_salesforce_sandbox(seed=17, deals=300, now=NOW) as running:
        yield running


@pytest.fixture
def sandbox(box: SalesforceSandbox) -> Iterator[SalesforceSandbox]:
    box.control.set_faults(None)
    box.org.usage.set_used(0, box.org.clock.now())
    yield box
    close_all()
    box.control.set_faults(None)


def page_by_page(sandbox: SalesforceSandbox, tmp_path: Path, soql: str) -> list[list[dict[str, Any]]]:
    """The pages as a client without Composite reads them: one call per page."""
    alone = connector(options(sandbox, tmp_path / "alone", query_batch_size=PAGE, queries_per_call=1))
    pages = list(alone.client.query_pages(soql))
    assert alone.usage().calls == len(pages)
    return pages


@pytest.mark.parametrize(
    ("limit", "pages", "calls"),
    [
        (7 * PAGE - 30, 7, 2),  # ends inside the second call: its last 3 subrequests are past the end
        (5 * PAGE, 5, 1),  # ends exactly on the fifth subrequest: no further call
        (6 * PAGE, 6, 2),  # one page more than a call: the second call reads one page
        (PAGE - 50, 1, 1),  # a single page: the 4 chained subrequests are past the end
    ],
)
def test_chained_read_returns_the_pages_of_the_page_by_page_read(
    sandbox: SalesforceSandbox, tmp_path: Path, limit: int, pages: int, calls: int
) -> None:
    soql = TASKS.format(limit=limit)
    expected = page_by_page(sandbox, tmp_path, soql)
    assert len(expected) == pages
    chained = connector(options(sandbox, tmp_path / "chained", query_batch_size=PAGE))
    sandbox.control.reset_stats()
    got = list(chained.client.chained_pages(soql))
    assert got == expected
    assert chained.usage().calls == sandbox.control.stats()["total"] == calls
    assert chained.usage().calls_by_endpoint == {"composite": calls}


def test_chained_query_all_reads_deleted_rows(sandbox: SalesforceSandbox, tmp_path: Path) -> None:
    """include_deleted chains from a queryAll: its Query More pages keep the deleted rows."""
    soql = TASKS.format(limit=3 * PAGE)
    conn = connector(options(sandbox, tmp_path / "t", query_batch_size=PAGE))
    expected = list(conn.client.query_pages(soql, include_deleted=True))
    assert [list(conn.client.chained_pages(soql, include_deleted=True))] == [expected]


def test_a_5xx_or_dropped_connection_on_a_chained_call_is_retried_whole(
    sandbox: SalesforceSandbox, tmp_path: Path
) -> None:
    """Faulty composite calls are repeated whole; each row comes back exactly once, in order."""
    soql = TASKS.format(limit=9 * PAGE)
    expected = [r["Id"] for page in page_by_page(sandbox, tmp_path, soql) for r in page]
    conn = connector(options(sandbox, tmp_path / "t", query_batch_size=PAGE))
    sandbox.control.set_faults(FaultConfig(error_rate=0.3, drop_rate=0.3, seed=4))
    sandbox.control.reset_stats()
    got = [r["Id"] for page in conn.client.chained_pages(soql) for r in page]
    stats = sandbox.control.stats()
    sandbox.control.set_faults(None)
    assert got == expected
    assert len(set(got)) == len(got) == 9 * PAGE
    assert stats["total"] > 2  # at least one of the two calls failed and was repeated
    assert conn.usage().calls >= 2


def test_a_session_revoked_between_chained_calls_is_renewed(
    sandbox: SalesforceSandbox, tmp_path: Path
) -> None:
    """After the first call every session dies: the next call gets 401, a new JWT, and the read goes on."""
    soql = TASKS.format(limit=8 * PAGE)
    expected = page_by_page(sandbox, tmp_path, soql)
    conn = connector(
        options(sandbox, tmp_path / "t", instance_url=None, auth=jwt_auth(sandbox), query_batch_size=PAGE)
    )
    observe = conn.client.session.observer
    assert observe is not None
    statuses: list[int] = []

    def revoke_after_the_first_call(response: requests.Response) -> None:
        observe(response)
        if "/composite" in str(response.request.url):
            statuses.append(response.status_code)
            if len(statuses) == 1:
                sandbox.org.tokens.revoke_all()

    conn.client.session.observer = revoke_after_the_first_call
    assert list(conn.client.chained_pages(soql)) == expected
    assert statuses == [200, 401, 200]
    assert conn.client.renewals == 1


def test_malformed_query_on_the_first_subrequest_is_translated(
    sandbox: SalesforceSandbox, tmp_path: Path
) -> None:
    """The query itself fails: its error surfaces (not retried), not the halted subrequests after it."""
    conn = connector(options(sandbox, tmp_path / "t"))
    with pytest.raises(FixConfiguration) as info:
        list(conn.client.chained_pages("SELECT Id FROM Task WHERE"))
    assert "MALFORMED_QUERY" in str(info.value)
    assert "PROCESSING_HALTED" not in str(info.value)
    assert conn.usage().calls == 1


def test_an_expired_query_locator_mid_chain_is_not_taken_for_the_end(
    sandbox: SalesforceSandbox, tmp_path: Path
) -> None:
    """The locator dies between two calls: INVALID_QUERY_LOCATOR is retried, then raised, never swallowed."""
    soql = TASKS.format(limit=7 * PAGE)
    conn = connector(options(sandbox, tmp_path / "t", query_batch_size=PAGE))
    pages = conn.client.chained_pages(soql)
    first = [next(pages) for _ in range(5)]  # the first call's pages
    assert sum(len(p) for p in first) == 5 * PAGE
    sandbox.org._cursors.clear()  # what Salesforce does to an idle locator after 15 minutes
    with pytest.raises(RetryLater) as info:
        next(pages)
    assert "INVALID_QUERY_LOCATOR" in str(info.value)
    assert conn.usage().calls == 1 + 8  # the first call, then every attempt of the second


# -- unit: what counts as "past the last page" ----------------------------------------------------------

MORE = "/services/data/v62.0/query/01gX-"


def two_page_query(more: Callable[[requests.PreparedRequest], tuple[int, Any]]) -> Callable[..., Any]:
    def query(request: requests.PreparedRequest) -> tuple[int, Any]:
        if request.path_url.startswith(MORE):
            return more(request)
        assert soql_of(request) == "SELECT Id FROM Task"
        return 200, query_page([{"Id": "00T1"}], MORE + "1")

    return query


def test_only_processing_halted_after_the_last_page_is_expected(
    make_connector: Callable[..., SalesforceConnector], scripted: ScriptedSalesforce
) -> None:
    """Two pages, three chained subrequests past the end (PROCESSING_HALTED): one call, both pages."""
    scripted.on(
        "GET", "/services/data/v62.0/query/", two_page_query(lambda r: (200, query_page([{"Id": "00T2"}])))
    )
    conn = make_connector()
    assert list(conn.client.chained_pages("SELECT Id FROM Task")) == [[{"Id": "00T1"}], [{"Id": "00T2"}]]
    (call,) = scripted.seen
    assert [s["url"] for s in body_of(call)["compositeRequest"]][1:] == [
        f"@{{r{n}.nextRecordsUrl}}" for n in range(4)
    ]
    assert len(scripted.subrequests) == 2  # the last three never reached a resource


def test_processing_halted_before_the_last_page_is_a_real_error(
    make_connector: Callable[..., SalesforceConnector], scripted: ScriptedSalesforce
) -> None:
    """The page before had a nextRecordsUrl: PROCESSING_HALTED here is an error, not the end of the query."""
    halted = [{"errorCode": "PROCESSING_HALTED", "message": "halted"}]
    scripted.on("GET", "/services/data/v62.0/query/", two_page_query(lambda r: (400, halted)))
    conn = make_connector()
    with pytest.raises(FixConfiguration) as info:
        list(conn.client.chained_pages("SELECT Id FROM Task"))
    assert "PROCESSING_HALTED" in str(info.value)


def test_another_error_after_the_last_page_is_raised(
    make_connector: Callable[..., SalesforceConnector], scripted: ScriptedSalesforce
) -> None:
    """Past the end only PROCESSING_HALTED is expected: any other answer there raises, nothing is lost."""

    def query(request: requests.PreparedRequest) -> tuple[int, Any]:
        return 200, query_page([{"Id": "00T1"}])

    def composite(request: requests.PreparedRequest) -> tuple[int, Any]:
        subs = body_of(request)["compositeRequest"]
        answers = [{"body": query_page([{"Id": "00T1"}]), "httpStatusCode": 200, "referenceId": "r0"}]
        answers += [
            {
                "body": [{"errorCode": "INVALID_FIELD", "message": "no such column"}],
                "httpStatusCode": 400,
                "referenceId": s["referenceId"],
            }
            for s in subs[1:]
        ]
        return 200, {"compositeResponse": answers}

    scripted.on("GET", "/services/data/v62.0/query/", query)
    scripted.on("POST", "/services/data/v62.0/composite", composite)
    conn = make_connector()
    with pytest.raises(FixConfiguration) as info:
        list(conn.client.chained_pages("SELECT Id FROM Task"))
    assert "INVALID_FIELD" in str(info.value)


def test_chaining_off_reads_one_page_per_call(
    make_connector: Callable[..., SalesforceConnector], scripted: ScriptedSalesforce
) -> None:
    """queries_per_call 1 (e.g. for responses too large for one call) is the plain page-by-page read."""
    scripted.on(
        "GET", "/services/data/v62.0/query/", two_page_query(lambda r: (200, query_page([{"Id": "00T2"}])))
    )
    conn = make_connector(queries_per_call=1)
    assert list(conn.client.chained_pages("SELECT Id FROM Task")) == [[{"Id": "00T1"}], [{"Id": "00T2"}]]
    assert [r.method for r in scripted.seen] == ["GET", "GET"]
