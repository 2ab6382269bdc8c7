"""The Salesforce sandbox's Composite resource (``POST composite``) through simple-salesforce and raw HTTPS:
bundled queries, references, per-subrequest errors, limits, allOrNone, API usage and faults."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from crm_sandbox.faults import FaultConfig
from crm_sandbox.salesforce import SalesforceSandbox, running_salesforce_sandbox
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceGeneralError, SalesforceMalformedRequest

from crm_sandbox_tests.salesforce_helpers import API, error_objects, trusted_session

NOW = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
DATA = f"/services/data/{API}"
COMPOSITE_KEY = "POST /services/data/v{version}/composite"


@pytest.fixture(scope="module")
def box():
    with running_salesforce_sandbox(seed=5, deals=60, now=NOW) as sandbox:
        sandbox.control.snapshot("seeded")
        yield sandbox


@pytest.fixture
def sf(box):
    with trusted_session(box.ca_file) as session:
        yield Salesforce(instance_url=box.instance_url, session_id=box.access_token, session=session)
    box.control.set_faults(None)
    box.control.restore("seeded")


def query_url(soql: str, *, resource: str = "query") -> str:
    return f"{DATA}/{resource}/?q=" + soql.replace(" ", "+")


def get(url: str, ref: str, **extra: object) -> dict[str, object]:
    return {"method": "GET", "url": url, "referenceId": ref, **extra}


def composite(
    sf: Salesforce, subrequests: Sequence[Mapping[str, object]], *, all_or_none: bool = False
) -> list[dict[str, Any]]:
    """POST ``composite`` through simple-salesforce; the subrequests' results, in order."""
    body = {"allOrNone": all_or_none, "compositeRequest": subrequests}
    answer = sf.restful("composite", method="POST", json=body)
    assert isinstance(answer, dict), answer
    results = answer["compositeResponse"]
    assert isinstance(results, list), answer
    return results


def used(box: SalesforceSandbox) -> int:
    """The org's API requests in the rolling 24 hours."""
    return box.org.usage.used(box.org.clock.now())


def test_several_queries_in_one_call_count_one_api_call(sf, box):
    """Three queries and a queryAll answer as they would alone; usage, Sforce-Limit-Info and stats say 1."""
    soqls = [
        "SELECT Id, Name FROM Opportunity ORDER BY Id LIMIT 7",
        "SELECT Id FROM Contact ORDER BY Id LIMIT 3",
        "SELECT COUNT() FROM Task",
    ]
    alone = [sf.query(s) for s in soqls]
    all_rows = sf.query_all("SELECT Id FROM Opportunity ORDER BY Id LIMIT 2")
    box.control.reset_stats()
    before = used(box)
    answers = composite(
        sf,
        [get(query_url(s), f"q{n}") for n, s in enumerate(soqls)]
        + [get(query_url("SELECT Id FROM Opportunity ORDER BY Id LIMIT 2", resource="queryAll"), "all")],
    )
    assert used(box) == before + 1
    assert sf.api_usage["api-usage"].used == before + 1  # the header of the composite response itself
    assert box.control.stats()["endpoints"] == {COMPOSITE_KEY: 1}
    assert [a["referenceId"] for a in answers] == ["q0", "q1", "q2", "all"]
    assert [a["httpStatusCode"] for a in answers] == [200, 200, 200, 200]
    assert [a["body"] for a in answers[:3]] == alone
    assert answers[3]["body"]["records"] == all_rows["records"]


def test_query_more_through_a_reference_honours_batch_size(sf):
    """``@{r0.nextRecordsUrl}`` continues a query in the same call; the batchSize header applies per page."""
    soql = "SELECT Id FROM Task ORDER BY Id"
    every = [r["Id"] for r in sf.query_all(soql)["records"]]
    assert len(every) > 400  # the test needs at least three pages of 200
    options = {"httpHeaders": {"Sforce-Query-Options": "batchSize=200"}}
    answers = composite(
        sf,
        [
            get(query_url(soql), "first", **options),
            get("@{first.nextRecordsUrl}", "second", **options),
            get("@{second.nextRecordsUrl}", "third", **options),
        ],
    )
    pages = [a["body"] for a in answers]
    assert [len(p["records"]) for p in pages[:2]] == [200, 200]
    assert pages[0]["nextRecordsUrl"] != pages[1]["nextRecordsUrl"]
    got = [r["Id"] for p in pages for r in p["records"]]
    assert got == every[: len(got)]
    assert len(got) == min(len(every), 600)
    if len(every) > 600:
        rest = sf.query_more(pages[2]["nextRecordsUrl"], identifier_is_url=True)
        assert [r["Id"] for r in rest["records"]] == every[600:2600]


def test_a_chain_past_the_last_page_halts_each_later_subrequest(sf):
    """The last page has no nextRecordsUrl: the next chained Query More and every one after it (each naming
    a failed subrequest) fail 400 PROCESSING_HALTED; the pages before them are complete."""
    soql = "SELECT Id FROM Task ORDER BY Id LIMIT 300"
    options = {"httpHeaders": {"Sforce-Query-Options": "batchSize=200"}}
    answers = composite(
        sf,
        [
            get(query_url(soql), "p0", **options),
            *(get(f"@{{p{n}.nextRecordsUrl}}", f"p{n + 1}", **options) for n in range(4)),
        ],
    )
    assert [a["httpStatusCode"] for a in answers] == [200, 200, 400, 400, 400]
    assert answers[1]["body"]["done"] is True
    assert "nextRecordsUrl" not in answers[1]["body"]
    assert sum(len(a["body"]["records"]) for a in answers[:2]) == 300
    for n, answer in enumerate(answers[2:], start=1):
        assert answer["body"] == [
            {
                "message": f"Invalid reference specified. No value for p{n}.nextRecordsUrl found in p{n}",
                "errorCode": "PROCESSING_HALTED",
            }
        ]


def test_failed_subrequest_leaves_the_others_and_halts_its_dependents(sf):
    """A bad query answers its own error list; references to it fail PROCESSING_HALTED; the rest succeed."""
    answers = composite(
        sf,
        [
            get(query_url("SELECT Bogus__c FROM Opportunity"), "bad"),
            get(query_url("SELECT Id FROM Opportunity ORDER BY Id LIMIT 1"), "good"),
            get(f"{DATA}/sobjects/Opportunity/@{{good.records[0].Id}}?fields=Name", "byRef"),
            get("@{bad.nextRecordsUrl}", "dependent"),
            get(f"{DATA}/sobjects/Opportunity/@{{good.records[5].Id}}", "outOfRange"),
            get(f"{DATA}/no/such/resource", "unknown"),
        ],
    )
    by_ref = {a["referenceId"]: a for a in answers}
    assert by_ref["bad"]["httpStatusCode"] == 400
    assert by_ref["bad"]["body"][0]["errorCode"] == "INVALID_FIELD"
    assert by_ref["good"]["httpStatusCode"] == 200
    assert by_ref["byRef"]["httpStatusCode"] == 200
    first_id = by_ref["good"]["body"]["records"][0]["Id"]
    assert by_ref["byRef"]["body"]["attributes"]["url"].endswith(f"/Opportunity/{first_id}")
    assert set(by_ref["byRef"]["body"]) == {"attributes", "Name"}
    assert by_ref["dependent"]["httpStatusCode"] == 400
    assert by_ref["dependent"]["body"] == [
        {
            "message": "Invalid reference specified. No value for bad.nextRecordsUrl found in bad",
            "errorCode": "PROCESSING_HALTED",
        }
    ]
    assert by_ref["outOfRange"]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert by_ref["unknown"]["httpStatusCode"] == 404
    assert by_ref["unknown"]["body"][0]["errorCode"] == "NOT_FOUND"


def test_writes_with_references_and_collections_inside(sf):
    """Create, then update and read the new record by ``@{ref.id}``; sObject Collections work inside too."""
    opp = sf.query("SELECT Id FROM Opportunity WHERE IsClosed = false ORDER BY Id LIMIT 1")["records"][0][
        "Id"
    ]
    answers = composite(
        sf,
        [
            {
                "method": "POST",
                "url": f"{DATA}/sobjects/Task",
                "referenceId": "newTask",
                "body": {"Subject": "Call back", "WhatId": opp, "TaskSubtype": "Call"},
            },
            {
                "method": "PATCH",
                "url": f"{DATA}/sobjects/Task/@{{newTask.id}}",
                "referenceId": "rename",
                "body": {"Subject": "Call back about @{newTask.id}"},
            },
            get(f"{DATA}/sobjects/Task/@{{newTask.id}}?fields=Subject", "read"),
            {
                "method": "POST",
                "url": f"{DATA}/composite/sobjects",
                "referenceId": "more",
                "body": {
                    "allOrNone": False,
                    "records": [
                        {"attributes": {"type": "Task"}, "Subject": "Second", "WhatId": "@{newTask.body}"}
                    ],
                },
            },
        ],
    )
    created, renamed, read, more = answers
    assert created["httpStatusCode"] == 201
    task_id = created["body"]["id"]
    assert renamed["httpStatusCode"] == 204
    assert renamed["body"] is None
    assert read["body"]["Subject"] == f"Call back about {task_id}"
    assert more["httpStatusCode"] == 400  # the reference has no such value
    assert more["body"][0]["errorCode"] == "PROCESSING_HALTED"
    collection = composite(
        sf,
        [
            {
                "method": "POST",
                "url": f"{DATA}/composite/sobjects",
                "referenceId": "many",
                "body": {"records": [{"attributes": {"type": "Task"}, "Subject": "Second", "WhatId": opp}]},
            }
        ],
    )[0]
    assert collection["httpStatusCode"] == 200
    assert collection["body"][0]["success"] is True
    assert sf.Task.get(collection["body"][0]["id"])["Subject"] == "Second"


def test_all_or_none_rolls_back_and_halts_the_others(sf):
    """allOrNone true: one failure undoes the earlier create and every other subrequest reports halted."""
    opp = sf.query("SELECT Id FROM Opportunity ORDER BY Id LIMIT 1")["records"][0]["Id"]
    before = sf.query("SELECT COUNT() FROM Task")["totalSize"]
    answers = composite(
        sf,
        [
            {
                "method": "POST",
                "url": f"{DATA}/sobjects/Task",
                "referenceId": "ok",
                "body": {"Subject": "Kept?", "WhatId": opp},
            },
            {"method": "POST", "url": f"{DATA}/sobjects/Task", "referenceId": "bad", "body": {"Nope__c": 1}},
            get(query_url("SELECT Id FROM User LIMIT 1"), "after"),
        ],
        all_or_none=True,
    )
    assert [a["httpStatusCode"] for a in answers] == [400, 400, 400]
    assert answers[1]["body"][0]["errorCode"] == "INVALID_FIELD"
    assert answers[0]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert answers[2]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert sf.query("SELECT COUNT() FROM Task")["totalSize"] == before


@pytest.mark.parametrize(
    ("subrequests", "code"),
    [
        ([get(query_url("SELECT Id FROM User"), f"r{n}") for n in range(6)], "LIMIT_EXCEEDED"),
        # collections and queries share the 5: four collections and two queries are refused
        (
            [
                {"method": "PATCH", "url": f"{DATA}/composite/sobjects", "referenceId": f"c{n}", "body": {}}
                for n in range(4)
            ]
            + [get(query_url("SELECT Id FROM User"), f"q{n}") for n in range(2)],
            "LIMIT_EXCEEDED",
        ),
        ([get(f"{DATA}/sobjects/User/describe", f"r{n}") for n in range(26)], "LIMIT_EXCEEDED"),
        ([get(f"{DATA}/limits", "same"), get(f"{DATA}/limits", "same")], "INVALID_API_INPUT"),
        ([get(f"{DATA}/limits", "not-valid")], "INVALID_API_INPUT"),
        ([{"method": "GET", "url": f"{DATA}/limits"}], "JSON_PARSER_ERROR"),
        ([get(f"{DATA}/limits", "r0", httpHeaders={"Authorization": "Bearer x"})], "INVALID_API_INPUT"),
    ],
)
def test_whole_request_errors_run_nothing(sf, box, subrequests, code):
    """Limits (25 subrequests, 5 query and collections operations) and malformed referenceIds fail the
    whole call with 400."""
    opp = sf.query("SELECT Id FROM Opportunity ORDER BY Id LIMIT 1")["records"][0]["Id"]
    before = sf.query("SELECT COUNT() FROM Task")["totalSize"]
    create = {"method": "POST", "url": f"{DATA}/sobjects/Task", "referenceId": "w", "body": {"WhatId": opp}}
    with pytest.raises(SalesforceMalformedRequest) as info:
        composite(sf, [create, *subrequests])
    assert error_objects(info.value)[0]["errorCode"] == code
    assert sf.query("SELECT COUNT() FROM Task")["totalSize"] == before


def test_a_referenced_sixth_query_fails_on_its_own(sf):
    """Five queries and a query more by reference: the sixth query operation alone is LIMIT_EXCEEDED."""
    options = {"httpHeaders": {"Sforce-Query-Options": "batchSize=200"}}
    subrequests = [get(query_url("SELECT Id FROM Task"), f"r{n}", **options) for n in range(5)]
    answers = composite(sf, [*subrequests, get("@{r0.nextRecordsUrl}", "more")])
    assert [a["httpStatusCode"] for a in answers] == [200] * 5 + [400]
    assert answers[5]["body"][0]["errorCode"] == "LIMIT_EXCEEDED"


def test_faults_apply_to_the_outer_request(sf, box):
    """An injected 500 answers the composite call as a whole, before any subrequest runs."""
    before = used(box)
    box.control.set_faults(FaultConfig(error_rate=1.0, seed=3))
    with pytest.raises(SalesforceGeneralError) as info:
        composite(sf, [get(query_url("SELECT Id FROM User"), "r0")])
    box.control.set_faults(None)
    assert info.value.status >= 500
    assert used(box) == before  # answered by the fault layer: the handler (and its usage count) never ran


def test_raw_http_needs_a_session_and_answers_in_request_order(box):
    """Raw HTTPS: 401 without a token; with one, compositeResponse follows the request order."""
    url = f"{box.instance_url}{DATA}/composite"
    body = {
        "compositeRequest": [get(f"{DATA}/limits", "b"), get(query_url("SELECT Id FROM User LIMIT 1"), "a")]
    }
    with trusted_session(box.ca_file) as session:
        assert session.post(url, json=body).status_code == 401
        session.headers["Authorization"] = f"Bearer {box.access_token}"
        response = session.post(url, json=body)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert "api-usage=" in response.headers["Sforce-Limit-Info"]
    answers = response.json()["compositeResponse"]
    assert [a["referenceId"] for a in answers] == ["b", "a"]
    assert answers[0]["body"]["DailyApiRequests"]["Max"] == 100_000
    assert answers[1]["body"]["totalSize"] == 1
