"""Write batches fill the Composite calls (issue 15): collections of every kind and queries together, 5 per
call (the Composite limit for sObject Collections and query operations together), the reads before the
writes in one round, the read-back riding after the writes. Against the scripted Salesforce transport."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import requests

from connectors.base import OutcomeStatus
from connectors.retry import RetrySettings
from connectors.salesforce import SalesforceConnector
from connectors.salesforce.composite import CollectionWriter, RecordStatus
from policies.model import Action, CloseReason, CloseTask, EnrolInNurture, Explanation, SetDealFields
from tests.connectors.salesforce.fake_transport import ScriptedSalesforce, body_of, query_page, soql_of

WHY = Explanation("because")
COLLECTIONS = "/services/data/v62.0/composite/sobjects"
QUERY = "/services/data/v62.0/query/"


def saved(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"id": r.get("id") or f"00T{i:015d}", "success": True, "errors": []} for i, r in enumerate(records)
    ]


def _carried(request: requests.PreparedRequest) -> list[str]:
    """What one Composite call carried, in order: ``POST 200`` / ``PATCH 50`` per collection (method and
    records), ``query`` per query, ``more`` per chained Query More page."""
    carried = []
    for sub in body_of(request)["compositeRequest"]:
        if sub["url"].endswith("/composite/sobjects"):
            carried.append(f"{sub['method']} {len(sub['body']['records'])}")
        elif "/query/?" in sub["url"]:
            carried.append("query")
        else:
            carried.append("more")
    return carried


def _composite_calls(scripted: ScriptedSalesforce) -> list[list[str]]:
    return [_carried(r) for r in scripted.seen if r.method == "POST" and (r.url or "").endswith("/composite")]


def test_collections_of_every_kind_fill_each_call_and_queries_follow_the_writes(
    make_connector: Callable[..., SalesforceConnector], scripted: ScriptedSalesforce
) -> None:
    """1,050 creates and 450 updates: 6 + 3 collections of at most 200, 5 per Composite call whatever
    their kind, and the query asked to follow the writes rides in the last call's free slot, after them:
    it answers what the writes left."""
    written: set[str] = set()

    def save(request: requests.PreparedRequest) -> tuple[int, Any]:
        records = body_of(request)["records"]
        written.update(str(r.get("id") or r["Subject"]) for r in records)
        return 200, saved(records)

    def stamps(request: requests.PreparedRequest) -> tuple[int, Any]:
        ids = [i for i in re.findall(r"'(006\w+)'", soql_of(request)) if i in written]
        return 200, query_page([{"Id": i, "LastModifiedDate": "2026-03-05T12:00:00.000+0000"} for i in ids])

    scripted.on("POST", COLLECTIONS, save)
    scripted.on("PATCH", COLLECTIONS, save)
    scripted.on("GET", QUERY, stamps)
    writer = CollectionWriter(make_connector().client, retry=RetrySettings(attempts=2), sleep=lambda s: None)
    creates = [{"attributes": {"type": "Task"}, "Subject": f"T{n}"} for n in range(1050)]
    updates = [{"attributes": {"type": "Opportunity"}, "id": f"006{n:012d}"} for n in range(450)]
    first = updates[0]["id"]
    result = writer.write(
        creates=creates,
        updates=updates,
        then_query=[f"SELECT Id, LastModifiedDate FROM Opportunity WHERE Id IN ('{first}')"],
    )
    assert _composite_calls(scripted) == [
        ["POST 200"] * 5,
        ["POST 50", "PATCH 200", "PATCH 200", "PATCH 50", "query"],
    ]
    assert [r for r in scripted.seen if (r.url or "").endswith("/composite/sobjects")] == []  # none alone
    assert len(result.creates) == 1050
    assert len(result.updates) == 450
    assert {r.status for r in [*result.creates, *result.updates]} == {RecordStatus.WRITTEN}
    assert not any(r.retried for r in [*result.creates, *result.updates])
    assert result.queries == [[{"Id": first, "LastModifiedDate": "2026-03-05T12:00:00.000+0000"}]]


def test_the_reads_before_the_writes_share_one_composite_call(
    make_connector: Callable[..., SalesforceConnector], scripted: ScriptedSalesforce
) -> None:
    """The stamp check of a deal write, which Tasks to close are still open and the nurture contacts'
    memberships are read in one Composite call (three calls before), then one call writes it all."""
    read_at = datetime(2026, 3, 4, 12, tzinfo=UTC)
    stamp = "2026-03-04T12:00:00.000+0000"

    def query(request: requests.PreparedRequest) -> tuple[int, Any]:
        text = soql_of(request)
        if "FROM Opportunity" in text:
            return 200, query_page([{"Id": "006A", "LastModifiedDate": stamp, "SystemModstamp": stamp}])
        if "FROM Task" in text:
            return 200, query_page([{"Id": "00TOPEN", "Description": None}])
        if "FROM Campaign " in text:  # the campaign by name; its members (FROM CampaignMember): none yet
            return 200, query_page([{"Id": "701N", "Name": "Nurture"}])
        return 200, query_page([])

    def save(request: requests.PreparedRequest) -> tuple[int, Any]:
        return 200, saved(body_of(request)["records"])

    scripted.on("GET", QUERY, query)
    scripted.on("POST", COLLECTIONS, save)
    scripted.on("PATCH", COLLECTIONS, save)
    actions: list[Action] = [
        SetDealFields(
            key="k1",
            deal_id="006A",
            rule_id="r",
            explanation=WHY,
            fields={"followup_state": "stopped"},
            expected_modified_at=read_at,
        ),
        CloseTask(
            key="k2",
            deal_id="006A",
            rule_id="r",
            explanation=WHY,
            task_id="00TOPEN",
            task_key="cf-1",
            reason=CloseReason.DEAL_STOPPED,
        ),
        EnrolInNurture(
            key="k3", deal_id="006A", rule_id="r", explanation=WHY, nurture="Nurture", contact_ids=("003C",)
        ),
    ]
    outcomes = make_connector().apply(actions)
    assert [o.status for o in outcomes] == [OutcomeStatus.APPLIED] * 3
    calls = _composite_calls(scripted)
    assert len(calls) == 2
    assert calls[0].count("query") == 3  # stamps, open Tasks, members (and pages chained on spare slots)
    assert calls[1] == ["POST 1", "PATCH 2"]  # the member; the close and the opportunity
