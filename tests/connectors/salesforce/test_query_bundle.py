"""``SalesforceClient.query_each``: independent queries bundled up to 5 per Composite call.

Contract tests against the HTTPS sandbox (same rows as separate queries, continuation pages, queryAll, the
incremental pull unchanged, a 5xx on the composite call retried without duplicates) and unit tests on a
scripted transport (per-subrequest errors translated by error code, never by body).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from crm_sandbox.faults import FaultConfig
from crm_sandbox.salesforce import SalesforceSandbox, running_salesforce_sandbox

from connectors.errors import FixConfiguration
from connectors.salesforce import SalesforceConnector
from connectors.salesforce.soql import chunked, in_list
from tests.connectors.salesforce.fake_transport import ScriptedSalesforce, body_of, query_page, soql_of
from tests.connectors.salesforce.sandbox_helpers import (
    NOW,
    close_all,
    connector,
    deals_by_id,
    options,
    plain_client,
    pull_all,
)
from tests.sobjects import sobject

COMPOSITE = "/services/data/v62.0/composite"


@pytest.fixture(scope="module")
def box() -> Iterator[SalesforceSandbox]:
    with running_salesforce_sandbox(seed=13, deals=120, now=NOW) as running:
        running.control.snapshot("pristine")
        yield running


@pytest.fixture
def sandbox(box: SalesforceSandbox) -> Iterator[SalesforceSandbox]:
    box.control.restore("pristine")
    box.control.set_faults(None)
    box.org.usage.set_used(0, box.org.clock.now())
    yield box
    close_all()
    box.control.set_faults(None)


def task_queries(sandbox: SalesforceSandbox, tmp_path: Path, ids_per_query: int) -> list[str]:
    """Tasks of the opportunities, ``ids_per_query`` opportunities a query, in Id order."""
    sf = plain_client(sandbox)
    opp_ids = sorted(r["Id"] for r in sf.query_all("SELECT Id FROM Opportunity")["records"])
    return [
        f"SELECT Id, WhatId, Subject FROM Task WHERE WhatId IN {in_list(chunk)} ORDER BY Id"
        for chunk in chunked(opp_ids, ids_per_query)
    ]


def test_bundled_queries_return_the_rows_of_separate_queries(
    sandbox: SalesforceSandbox, tmp_path: Path
) -> None:
    """Five queries (some over two 200-row pages) give the same rows, in fewer calls, all composite."""
    queries = task_queries(sandbox, tmp_path, 24)
    alone = connector(options(sandbox, tmp_path / "a", query_batch_size=200, queries_per_call=1))
    expected = [list(alone.client.query_records(q)) for q in queries]
    assert len(queries) == 5
    assert max(len(rows) for rows in expected) > 200  # at least one continuation page
    separate_calls = alone.usage().calls
    bundled = connector(options(sandbox, tmp_path / "b", query_batch_size=200))
    sandbox.control.reset_stats()
    got = list(bundled.client.query_each(queries))
    assert got == expected
    pages = sum(max(1, -(-len(rows) // 200)) for rows in expected)
    assert separate_calls == pages > 5  # first pages, then continuation pages in a second call
    assert bundled.usage().calls == sandbox.control.stats()["total"] == -(-pages // 5)
    assert bundled.usage().calls_by_endpoint == {"composite": bundled.usage().calls}


def test_bundled_query_all_sees_deleted_rows(sandbox: SalesforceSandbox, tmp_path: Path) -> None:
    """include_deleted sends queryAll subrequests: recycled rows come back, as with queryAll alone."""
    queries = task_queries(sandbox, tmp_path, 40)
    sf = plain_client(sandbox)
    gone = sf.query(queries[1])["records"][0]["Id"]
    sobject(sf, "Task").delete(gone)
    conn = connector(options(sandbox, tmp_path / "t"))
    with_deleted = list(conn.client.query_each(queries, include_deleted=True))
    live = list(conn.client.query_each(queries))
    assert [list(conn.client.query_records(q, include_deleted=True)) for q in queries] == with_deleted
    assert gone in {r["Id"] for r in with_deleted[1]}
    assert gone not in {r["Id"] for r in live[1]}


def change_some_deals(sandbox: SalesforceSandbox, ids: list[str]) -> None:
    """Edit 20 opportunities, log a call on the first contact of 20 others (a touch on all its deals)."""
    sf = plain_client(sandbox)
    for opp in ids[:20]:
        sobject(sf, "Opportunity").update(opp, {"NextStep": "Changed for the bundle test"})
    roles = sf.query_all("SELECT OpportunityId, ContactId FROM OpportunityContactRole ORDER BY Id")["records"]
    contact_of = {r["OpportunityId"]: r["ContactId"] for r in reversed(roles)}
    for opp in [i for i in ids[20:] if i in contact_of][:20]:
        sobject(sf, "Task").create(
            {
                "WhatId": opp,
                "WhoId": contact_of[opp],
                "Subject": "Logged call",
                "Status": "Completed",
                "TaskSubtype": "Call",
                "CallType": "Outbound",
                "CallDisposition": "Connected",
            }
        )


def test_incremental_pull_returns_the_same_deals_bundled_or_not(
    sandbox: SalesforceSandbox, tmp_path: Path
) -> None:
    """With 10 ids per query the incremental pull has many id chunks: same deals, fewer calls bundled."""
    one_by_one = connector(options(sandbox, tmp_path / "a", ids_per_query=10, queries_per_call=1))
    bundled = connector(options(sandbox, tmp_path / "b", ids_per_query=10))
    directory = one_by_one.read_directory()
    full = pull_all(one_by_one, directory, None)
    sandbox.control.set_clock(sandbox.control.clock() + timedelta(hours=1), ticking=True)
    change_some_deals(sandbox, sorted(deals_by_id(full)))
    cursor = full[-1].cursor
    before = one_by_one.usage().calls
    plain = pull_all(one_by_one, directory, cursor)
    separate_calls = one_by_one.usage().calls - before
    together = pull_all(bundled, directory, cursor)
    assert len(deals_by_id(plain)) > 40  # the changed deals and the other deals of the touched contacts
    assert deals_by_id(together) == deals_by_id(plain)
    assert [b.removed_deal_ids for b in together] == [b.removed_deal_ids for b in plain]
    assert together[-1].cursor == plain[-1].cursor
    assert bundled.usage().calls < separate_calls / 2


def test_a_5xx_on_the_composite_call_is_retried_without_duplicates(
    sandbox: SalesforceSandbox, tmp_path: Path
) -> None:
    """Injected 500/502/503/504 answers on composite calls are retried whole; every row comes back once."""
    queries = task_queries(sandbox, tmp_path, 10)
    conn = connector(options(sandbox, tmp_path / "t", query_batch_size=200))
    clean = list(conn.client.query_each(queries))
    sandbox.control.set_faults(FaultConfig(error_rate=0.4, seed=2))
    sandbox.control.reset_stats()
    faulty = list(conn.client.query_each(queries))
    stats = sandbox.control.stats()
    sandbox.control.set_faults(None)
    assert faulty == clean
    assert sum(n for status, n in stats["statuses"].items() if status.startswith("5")) >= 1
    assert set(stats["endpoints"]) == {"POST /services/data/v{version}/composite"}


# -- unit: a scripted transport -----------------------------------------------------------------------


def test_a_failed_subrequest_is_translated_by_its_error_code(
    make_connector: Callable[..., SalesforceConnector], scripted: ScriptedSalesforce
) -> None:
    """INVALID_FIELD in one subrequest is FixConfiguration naming the code, never the message or the SOQL."""

    def query(request: requests.PreparedRequest) -> tuple[int, Any]:
        if "Secret__c" in soql_of(request):
            return 400, [
                {"message": "No such column 'Secret__c' (ada@example.com)", "errorCode": "INVALID_FIELD"}
            ]
        return 200, query_page([{"Id": "00T1"}])

    scripted.on("GET", "/services/data/v62.0/query/", query)
    conn = make_connector()
    with pytest.raises(FixConfiguration) as info:
        list(conn.client.query_each(["SELECT Id FROM Task", "SELECT Secret__c FROM Task"]))
    assert "INVALID_FIELD" in str(info.value)
    assert "composite query" in str(info.value)
    assert "ada@example.com" not in str(info.value)
    assert "Secret__c" not in str(info.value)
    assert [r.method for r in scripted.seen] == ["POST"]  # not retried: fixing it needs a person


def test_a_transient_subrequest_error_retries_the_call_without_duplicates(
    make_connector: Callable[..., SalesforceConnector], scripted: ScriptedSalesforce
) -> None:
    """QUERY_TIMEOUT in one subrequest repeats the whole composite call; rows are kept from the good call."""
    attempts: list[str] = []

    def query(request: requests.PreparedRequest) -> tuple[int, Any]:
        text = soql_of(request)
        attempts.append(text)
        if text.endswith("B") and attempts.count(text) == 1:
            return 400, [
                {"message": "Your query request was running for too long.", "errorCode": "QUERY_TIMEOUT"}
            ]
        return 200, query_page([{"Id": f"row-{text[-1]}"}])

    scripted.on("GET", "/services/data/v62.0/query/", query)
    conn = make_connector()
    got = list(
        conn.client.query_each(
            ["SELECT Id FROM Task WHERE Subject = A", "SELECT Id FROM Task WHERE Subject = B"]
        )
    )
    assert got == [[{"Id": "row-A"}], [{"Id": "row-B"}]]
    assert [r.method for r in scripted.seen] == ["POST", "POST"]
    assert [len(body_of(r)["compositeRequest"]) for r in scripted.seen] == [5, 5]  # spare slots chained
    assert attempts.count("SELECT Id FROM Task WHERE Subject = A") == 2  # read twice, kept once
    assert conn.usage().calls == 2


def test_continuation_pages_of_several_queries_share_calls(
    make_connector: Callable[..., SalesforceConnector], scripted: ScriptedSalesforce
) -> None:
    """Six queries with two pages each: 12 pages in ceil(12 / 5) = 3 calls, with query-more subrequests.

    The third call has two continuations to read and chains the 3 spare slots after them; those find
    the queries done and fail PROCESSING_HALTED, which is expected and costs nothing.
    """

    def query(request: requests.PreparedRequest) -> tuple[int, Any]:
        path = request.path_url
        if "/query/01g" in path:
            return 200, query_page([{"Id": path.rsplit("/", 1)[-1] + "-2"}])
        n = soql_of(request)[-1]
        return 200, query_page([{"Id": f"q{n}-1"}], f"/services/data/v62.0/query/01g{n}-1")

    scripted.on("GET", "/services/data/v62.0/query/", query)
    conn = make_connector()
    got = list(conn.client.query_each([f"SELECT Id FROM Task WHERE Subject = {n}" for n in range(6)]))
    assert got == [[{"Id": f"q{n}-1"}, {"Id": f"01g{n}-1-2"}] for n in range(6)]
    assert [len(body_of(r)["compositeRequest"]) for r in scripted.seen] == [5, 5, 5]
    assert len(scripted.subrequests) == 12  # the chained slots past the end never reached a resource
    assert all(r.headers["Sforce-Query-Options"] == "batchSize=2000" for r in scripted.subrequests)
    assert conn.usage().calls == 3
