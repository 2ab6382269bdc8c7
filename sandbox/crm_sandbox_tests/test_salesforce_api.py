"""The Salesforce sandbox's read endpoints through simple-salesforce and raw HTTPS: query, paging, describe,
limits, errors."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from crm_sandbox.salesforce import running_salesforce_sandbox
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from crm_sandbox_tests.salesforce_helpers import API, error_objects, trusted_session

NOW = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def box():
    with running_salesforce_sandbox(seed=7, deals=60, now=NOW) as sandbox:
        yield sandbox


@pytest.fixture
def sf(box):
    return Salesforce(
        instance_url=box.instance_url, session_id=box.access_token, session=trusted_session(box.ca_file)
    )


@pytest.fixture
def raw(box):
    session = trusted_session(box.ca_file)
    session.headers["Authorization"] = f"Bearer {box.access_token}"
    return session


def test_query_returns_records_with_attributes_and_nested_parents(sf):
    """A query page has totalSize/done/records; parents nest under their relationship name."""
    page = sf.query(
        "SELECT Id, Name, StageName, Owner.Name, Account.Name FROM Opportunity ORDER BY Id LIMIT 5"
    )
    assert page["totalSize"] == 5
    assert page["done"] is True
    first = page["records"][0]
    assert first["attributes"]["type"] == "Opportunity"
    assert first["attributes"]["url"] == f"/services/data/{API}/sobjects/Opportunity/{first['Id']}"
    assert first["Id"].startswith("006")
    assert len(first["Id"]) == 18
    assert first["Owner"]["attributes"]["type"] == "User"
    assert isinstance(first["Owner"]["Name"], str)


def test_paging_follows_next_records_url_with_batch_size(sf):
    """batchSize=200 splits the result; nextRecordsUrl has Salesforce's locator-offset form."""
    total = sf.query("SELECT COUNT() FROM Task")["totalSize"]
    assert total > 400
    first = sf.query("SELECT Id FROM Task ORDER BY Id", headers={"Sforce-Query-Options": "batchSize=200"})
    assert first["totalSize"] == total
    assert first["done"] is False
    assert len(first["records"]) == 200
    assert re.fullmatch(rf"/services/data/{API}/query/01g\w{{15}}-200", first["nextRecordsUrl"])
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert second["records"][0]["Id"] > first["records"][-1]["Id"]
    ids = [
        r["Id"]
        for r in sf.query_all_iter("SELECT Id FROM Task", headers={"Sforce-Query-Options": "batchSize=300"})
    ]
    assert len(ids) == len(set(ids)) == total


def test_child_rows_count_toward_the_batch_size(sf):
    """A page with subqueries holds fewer parents when their children fill the batch."""
    page = sf.query(
        "SELECT Id, (SELECT Id FROM Tasks) FROM Opportunity",
        headers={"Sforce-Query-Options": "batchSize=200"},
    )
    rows = sum(1 + ((r["Tasks"] or {}).get("totalSize", 0)) for r in page["records"])
    assert rows <= 200 or len(page["records"]) == 1
    assert page["done"] is False


def test_worker_incremental_query_with_subqueries(sf):
    """The worker's incremental query shape (SystemModstamp watermark, subqueries) works end to end."""
    since = (NOW - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    records = list(
        sf.query_all_iter(
            "SELECT Id, StageName, IsClosed, IsWon, NextStep, CloseDate, Amount, OwnerId, LastActivityDate, "
            "Probability, ForecastCategoryName, SystemModstamp, Followup_State__c, "
            "(SELECT ContactId, Role, IsPrimary FROM OpportunityContactRoles), "
            "(SELECT Id, Subject, Status, ActivityDate, TaskSubtype, CallType, IsClosed, CreatedDate "
            "FROM Tasks ORDER BY CreatedDate DESC LIMIT 20), (SELECT Id, StartDateTime, Subject FROM Events) "
            f"FROM Opportunity WHERE SystemModstamp > {since} ORDER BY SystemModstamp, Id"
        )
    )
    stamps = [r["SystemModstamp"] for r in records]
    assert stamps == sorted(stamps)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", s) for s in stamps)
    assert all(s > since.replace("Z", "") for s in stamps)
    with_tasks = [r for r in records if r["Tasks"]]
    assert with_tasks
    assert all(len(r["Tasks"]["records"]) <= 20 for r in with_tasks)


def test_query_all_and_include_deleted(sf, box):
    """A deleted Task disappears from query but queryAll still returns it with IsDeleted = true."""
    task_id = sf.query("SELECT Id FROM Task ORDER BY Id LIMIT 1")["records"][0]["Id"]
    box.control.snapshot("before-delete")
    try:
        assert sf.Task.delete(task_id) == 204
        soql = f"SELECT Id, IsDeleted FROM Task WHERE Id = '{task_id}'"
        assert sf.query(soql)["totalSize"] == 0
        rows = sf.query(soql, include_deleted=True)["records"]
        assert rows[0]["IsDeleted"] is True
    finally:
        box.control.restore("before-delete")
    assert sf.query(f"SELECT Id FROM Task WHERE Id = '{task_id}'")["totalSize"] == 1


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT Id FRM Opportunity", "MALFORMED_QUERY"),
        ("SELECT Bogus__c FROM Opportunity", "INVALID_FIELD"),
        ("SELECT Id FROM Nope", "INVALID_TYPE"),
    ],
)
def test_query_errors_raise_malformed_request_with_error_list(sf, soql, code):
    """Query errors are 400 with a JSON list [{message, errorCode}] that simple-salesforce exposes."""
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query(soql)
    assert info.value.status == 400
    assert error_objects(info.value)[0]["errorCode"] == code
    assert "ERROR at Row:1:Column:" in error_objects(info.value)[0]["message"]


def test_describe_reports_custom_fields_and_child_relationships(sf):
    """describe lists fields with types, external ids and picklists, and the child relationships."""
    task = sf.Task.describe()
    fields = {f["name"]: f for f in task["fields"]}
    assert fields["Followup_Key__c"]["externalId"] is True
    assert fields["Followup_Key__c"]["custom"] is True
    assert fields["TaskSubtype"]["updateable"] is False
    assert {p["value"] for p in fields["CallType"]["picklistValues"]} == {"Internal", "Inbound", "Outbound"}
    assert task["keyPrefix"] == "00T"
    opp = sf.Opportunity.describe()
    relationships = {r["relationshipName"] for r in opp["childRelationships"]}
    assert {"OpportunityContactRoles", "Tasks", "Events"} <= relationships
    roles = {f["name"]: f for f in sf.OpportunityContactRole.describe()["fields"]}["Role"]
    assert "Gatekeeper" in {p["value"] for p in roles["picklistValues"]}
    listing = sf.describe()
    assert {o["name"]: o["keyPrefix"] for o in listing["sobjects"]}["CampaignMember"] == "00v"


def test_limits_and_usage_header(sf, raw, box):
    """limits/ reports DailyApiRequests and every response carries Sforce-Limit-Info."""
    before = sf.limits()["DailyApiRequests"]
    assert before["Max"] == 100_000
    response = raw.get(f"{box.instance_url}/services/data/{API}/limits/")
    usage = re.fullmatch(r"api-usage=(\d+)/(\d+)", response.headers["Sforce-Limit-Info"])
    assert usage is not None, response.headers["Sforce-Limit-Info"]
    used, total = map(int, usage.groups())
    assert total == 100_000
    assert used == before["Max"] - before["Remaining"] + 1
    assert response.headers["Content-Type"] == "application/json;charset=UTF-8"
    sf.query("SELECT Id FROM User LIMIT 1")
    assert sf.api_usage["api-usage"].used == used + 1


def test_daily_budget_exhaustion_is_request_limit_exceeded(sf, box):
    """Once the daily allocation is spent every call is 403 REQUEST_LIMIT_EXCEEDED."""
    session = trusted_session(box.ca_file)
    url = f"{box.instance_url}/__sandbox__/salesforce/api-usage"
    assert session.post(url, json={"used": 100_000}).status_code == 200
    try:
        with pytest.raises(SalesforceRefusedRequest) as info:
            sf.query("SELECT Id FROM Opportunity LIMIT 1")
        assert error_objects(info.value) == [
            {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
        ]
    finally:
        session.post(url, json={"used": 0})
    assert sf.query("SELECT COUNT() FROM Opportunity")["totalSize"] == 60


def test_missing_or_bad_token_is_invalid_session_id(box):
    """Without a valid Bearer token the API answers 401 with INVALID_SESSION_ID in a list."""
    with trusted_session(box.ca_file) as session:
        response = session.get(f"{box.instance_url}/services/data/{API}/query/?q=SELECT+Id+FROM+User")
        assert response.status_code == 401
        assert response.json() == [
            {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
        ]
        sf = Salesforce(instance_url=box.instance_url, session_id="00Dbogus!token", session=session)
        with pytest.raises(SalesforceExpiredSession):
            sf.query("SELECT Id FROM User")


def test_raw_routes_accept_both_slash_forms_and_check_versions(raw, box):
    """Trailing-slash variants both work; unknown versions and paths are 404 error lists."""
    base = box.instance_url
    for path in (
        f"/services/data/{API}/query?q=SELECT+Id+FROM+User",
        f"/services/data/{API}/query/?q=SELECT+Id+FROM+User",
    ):
        assert raw.get(base + path).status_code == 200
    assert raw.get(f"{base}/services/data/{API}/sobjects").status_code == 200
    old = raw.get(f"{base}/services/data/v39.0/limits")
    assert old.status_code == 404
    assert old.json()[0]["errorCode"] == "NOT_FOUND"
    with trusted_session(box.ca_file) as anonymous:
        listing = anonymous.get(f"{base}/services/data/").json()
    assert {"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"} in listing
    assert raw.get(f"{base}/services/data/{API}/query?q=").json()[0]["errorCode"] == "MALFORMED_QUERY"
    bad_locator = raw.get(f"{base}/services/data/{API}/query/01gXXXXXXXXXXXXXXX-2000")
    assert bad_locator.status_code == 400
    assert bad_locator.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_record_get_and_not_found(sf, raw, box):
    """GET by id returns every field with attributes; unknown ids are 404."""
    opp_id = sf.query("SELECT Id FROM Opportunity LIMIT 1")["records"][0]["Id"]
    record = sf.Opportunity.get(opp_id)
    assert record["Id"] == opp_id
    assert {"StageName", "CloseDate", "SystemModstamp", "Followup_State__c"} <= set(record)
    assert sf.Opportunity.get(opp_id[:15])["Id"] == opp_id
    fields = raw.get(
        f"{box.instance_url}/services/data/{API}/sobjects/Opportunity/{opp_id}?fields=Name,Amount"
    ).json()
    assert set(fields) == {"attributes", "Name", "Amount"}
    with pytest.raises(SalesforceResourceNotFound):
        sf.Opportunity.get("006" + "0" * 15)


def test_updated_and_deleted_resources(sf, box):
    """sobjects/X/updated and /deleted list ids changed or deleted in a window."""
    start = NOW - timedelta(days=3 * 365)
    end = datetime.now(UTC) + timedelta(days=1)
    changed = sf.Opportunity.updated(start, end)
    assert len(changed["ids"]) == 60
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:00\.000\+0000", changed["latestDateCovered"])
    gone = sf.Opportunity.deleted(start, end)
    assert gone["deletedRecords"] == []
    assert "earliestDateAvailable" in gone


def test_introspection_counts_requests_per_route(sf, box):
    """The shared /__sandbox__/stats counts calls under their route template."""
    box.control.reset_stats()
    sf.query("SELECT Id FROM User LIMIT 1")
    sf.query("SELECT Id FROM User LIMIT 2")
    stats = box.control.stats()
    assert stats["endpoints"]["GET /services/data/v{version}/query/"] == 2
