"""Unit tests for write-back (write.py, composite.py) against a scripted Salesforce transport."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import requests

from connectors.base import OutcomeStatus
from connectors.salesforce import SalesforceConnector
from policies.model import (
    Action,
    ChangeStage,
    CloseReason,
    CloseTask,
    CreateTask,
    EnrolInNurture,
    Explanation,
    ReactivateFromNurture,
    SetDealFields,
)
from tests.connectors.salesforce.fake_transport import ScriptedSalesforce, body_of, query_page, soql_of

WHY = Explanation("because")
COMPOSITE = "/services/data/v62.0/composite/sobjects"
QUERY = "/services/data/v62.0/query/"
QUERY_ALL = "/services/data/v62.0/queryAll/"


def create(n: int) -> CreateTask:
    return CreateTask(
        key=f"cf-{n:020x}",
        deal_id="0065g000000001AAA",
        rule_id="r",
        explanation=WHY,
        owner_id=None,
        subject=f"Task {n}",
        body="",
        due_at=datetime(2026, 3, 6, 10, tzinfo=UTC),
    )


def saved(records: list[dict[str, Any]], prefix: str = "00T") -> list[dict[str, Any]]:
    return [{"id": f"{prefix}{i:015d}", "success": True, "errors": []} for i, _ in enumerate(records)]


def test_creates_go_in_collections_of_200_with_per_record_outcomes(
    make_connector: Callable[..., SalesforceConnector], scripted: ScriptedSalesforce
) -> None:
    """250 tasks go in two collections, sent together in one Composite call; a rejected record fails alone."""
    sizes: list[int] = []

    def post(request: requests.PreparedRequest) -> tuple[int, Any]:
        records = body_of(request)["records"]
        sizes.append(len(records))
        results = saved(records)
        if len(records) == 50:
            results[0] = {"success": False, "errors": [{"statusCode": "STRING_TOO_LONG", "message": "x"}]}
        return 200, results

    scripted.on("POST", COMPOSITE, post)
    connector = make_connector()
    outcomes = connector.apply([create(n) for n in range(250)])
    assert sizes == [200, 50]
    assert connector.usage().calls_by_endpoint == {"composite": 1}
    assert [o.status for o in outcomes].count(OutcomeStatus.APPLIED) == 249
    assert outcomes[200].status is OutcomeStatus.FAILED
    assert "STRING_TOO_LONG" in (outcomes[200].message or "")
    assert [o.key for o in outcomes] == [create(n).key for n in range(250)]


def test_locked_records_are_retried_alone(
    make_connector: Callable[..., SalesforceConnector], scripted: ScriptedSalesforce
) -> None:
    """A record refused with UNABLE_TO_LOCK_ROW is sent again; the others are not re-sent."""
    sent: list[list[str]] = []

    def post(request: requests.PreparedRequest) -> tuple[int, Any]:
        records = body_of(request)["records"]
        sent.append([r["Subject"] for r in records])
        results = saved(records)
        if len(sent) == 1:
            results[1] = {"success": False, "errors": [{"statusCode": "UNABLE_TO_LOCK_ROW", "message": "x"}]}
        return 200, results

    scripted.on("POST", COMPOSITE, post)
    scripted.on("GET", QUERY_ALL, lambda r: (200, query_page([])))
    outcomes = make_connector().apply([create(1), create(2)])
    assert sent == [["Task 1", "Task 2"], ["Task 2"]]
    assert [o.status for o in outcomes] == [OutcomeStatus.APPLIED, OutcomeStatus.APPLIED]


def test_dropped_connection_after_create_never_duplicates(
    make_connector: Callable[..., SalesforceConnector], scripted: ScriptedSalesforce
) -> None:
    """When the answer to a create is lost, the retry finds the task by its key instead of re-creating it."""
    created: dict[str, str] = {}

    def post(request: requests.PreparedRequest) -> tuple[int, Any]:
        records = body_of(request)["records"]
        for n, record in enumerate(records):
            created[record["Followup_Key__c"]] = f"00T{len(created) + n:015d}"
        if len(created) == 1:
            raise requests.exceptions.ChunkedEncodingError("connection dropped mid-response")
        return 200, saved(records)

    def find(request: requests.PreparedRequest) -> tuple[int, Any]:
        assert "Followup_Key__c IN" in soql_of(request)
        rows = [{"Id": i, "Followup_Key__c": k} for k, i in created.items() if k in soql_of(request)]
        return 200, query_page(rows)

    scripted.on("POST", COMPOSITE, post)
    scripted.on("GET", QUERY_ALL, find)
    (outcome,) = make_connector().apply([create(7)])
    assert outcome.status is OutcomeStatus.ALREADY_APPLIED
    assert len(created) == 1
    assert outcome.crm_ids == (created[create(7).key],)


def test_a_lost_answer_to_bundled_collections_creates_nothing_twice(
    make_connector: Callable[..., SalesforceConnector], scripted: ScriptedSalesforce
) -> None:
    """The Composite call carrying two collections lands but its answer is lost: each collection then goes
    on alone, looking its Tasks up by key first, so none is created twice and none is lost."""
    created: dict[str, str] = {}
    composite_calls = 0

    def post(request: requests.PreparedRequest) -> tuple[int, Any]:
        records = body_of(request)["records"]
        for record in records:
            created.setdefault(record["Followup_Key__c"], f"00T{len(created):015d}")
        return 200, [{"id": created[r["Followup_Key__c"]], "success": True, "errors": []} for r in records]

    def composite(request: requests.PreparedRequest) -> tuple[int, Any]:
        nonlocal composite_calls
        composite_calls += 1
        for sub in body_of(request)["compositeRequest"]:  # Salesforce wrote them ...
            for record in sub["body"]["records"]:
                created.setdefault(record["Followup_Key__c"], f"00T{len(created):015d}")
        raise requests.exceptions.ChunkedEncodingError("connection dropped mid-response")  # ... unheard

    def find(request: requests.PreparedRequest) -> tuple[int, Any]:
        rows = [{"Id": i, "Followup_Key__c": k} for k, i in created.items() if k in soql_of(request)]
        return 200, query_page(rows)

    scripted.on("POST", "/services/data/v62.0/composite/sobjects", post)
    scripted.on("POST", "/services/data/v62.0/composite", composite)
    scripted.on("GET", QUERY_ALL, find)
    actions = [create(n) for n in range(250)]
    outcomes = make_connector().apply(actions)
    assert composite_calls == 1
    assert len(created) == 250
    assert {o.status for o in outcomes} == {OutcomeStatus.ALREADY_APPLIED}
    assert [o.crm_ids for o in outcomes] == [(created[a.key],) for a in actions]


def test_stage_change_conflicts_when_the_opportunity_changed(
    make_connector: Callable[..., SalesforceConnector], scripted: ScriptedSalesforce
) -> None:
    """Stage and field changes are written only if LastModifiedDate still matches; same-deal changes merge."""
    read_at = datetime(2026, 3, 4, 12, tzinfo=UTC)
    stamps = [
        {
            "Id": "006A",
            "LastModifiedDate": "2026-03-04T12:00:00.000+0000",
            "SystemModstamp": "2026-03-04T12:00:00.000+0000",
        },
        {
            "Id": "006B",
            "LastModifiedDate": "2026-03-05T08:00:00.000+0000",
            "SystemModstamp": "2026-03-05T08:00:00.000+0000",
        },
    ]
    patched: list[dict[str, Any]] = []
    scripted.on("GET", QUERY, lambda r: (200, query_page(stamps)))

    def patch(request: requests.PreparedRequest) -> tuple[int, Any]:
        patched.extend(body_of(request)["records"])
        return 200, [{"id": r["id"], "success": True, "errors": []} for r in body_of(request)["records"]]

    scripted.on("PATCH", COMPOSITE, patch)
    actions: list[Action] = [
        ChangeStage(
            key="k1",
            deal_id="006A",
            rule_id="r",
            explanation=WHY,
            pipeline_id="default",
            stage_id="Closed Lost",
            expected_modified_at=read_at,
        ),
        SetDealFields(
            key="k2",
            deal_id="006A",
            rule_id="r",
            explanation=WHY,
            fields={"followup_state": "stopped"},
            expected_modified_at=read_at,
        ),
        ChangeStage(
            key="k3",
            deal_id="006B",
            rule_id="r",
            explanation=WHY,
            pipeline_id="default",
            stage_id="Closed Lost",
            expected_modified_at=read_at,
        ),
    ]
    outcomes = make_connector().apply(actions)
    assert [o.status for o in outcomes] == [
        OutcomeStatus.APPLIED,
        OutcomeStatus.APPLIED,
        OutcomeStatus.CONFLICT,
    ]
    assert patched == [
        {
            "attributes": {"type": "Opportunity"},
            "id": "006A",
            "StageName": "Closed Lost",
            "Followup_State__c": "stopped",
        }
    ]


def test_nurture_skips_existing_members_and_treats_duplicates_as_applied(
    make_connector: Callable[..., SalesforceConnector], scripted: ScriptedSalesforce
) -> None:
    """An existing member is ALREADY_APPLIED without a write; DUPLICATE_VALUE on insert is not a failure."""
    posted: list[str] = []

    def query(request: requests.PreparedRequest) -> tuple[int, Any]:
        text = soql_of(request)
        if "FROM Campaign " in text:
            return 200, query_page([{"Id": "701A", "Name": "Nurture Q3", "IsActive": True}])
        return 200, query_page(
            [{"Id": "00vA", "ContactId": "003A", "Status": "Nurture", "HasResponded": False}]
        )

    def post(request: requests.PreparedRequest) -> tuple[int, Any]:
        posted.extend(r["ContactId"] for r in body_of(request)["records"])
        return 200, [
            {
                "success": False,
                "errors": [{"statusCode": "DUPLICATE_VALUE", "message": "Already a campaign member."}],
            }
        ]

    scripted.on("GET", QUERY, query)
    scripted.on("POST", COMPOSITE, post)
    actions = [
        EnrolInNurture(
            key="n1",
            deal_id="006A",
            rule_id="r",
            explanation=WHY,
            contact_ids=("003A",),
            nurture="Nurture Q3",
        ),
        EnrolInNurture(
            key="n2",
            deal_id="006B",
            rule_id="r",
            explanation=WHY,
            contact_ids=("003B",),
            nurture="Nurture Q3",
        ),
        EnrolInNurture(
            key="n3", deal_id="006C", rule_id="r", explanation=WHY, contact_ids=("003C",), nurture="Missing"
        ),
    ]
    outcomes = make_connector().apply(actions)
    assert posted == ["003B"]
    assert [o.status for o in outcomes] == [
        OutcomeStatus.ALREADY_APPLIED,
        OutcomeStatus.ALREADY_APPLIED,
        OutcomeStatus.FAILED,
    ]
    assert "followup setup salesforce" in (outcomes[2].message or "")


def test_reactivation_removes_members_and_closing_a_deleted_task_is_done(
    make_connector: Callable[..., SalesforceConnector], scripted: ScriptedSalesforce
) -> None:
    """Reactivation deletes the membership; closing a task someone deleted counts as done."""
    deleted: list[str] = []

    def query(request: requests.PreparedRequest) -> tuple[int, Any]:
        if "FROM Campaign " in soql_of(request):
            return 200, query_page([{"Id": "701A", "Name": "Nurture Q3", "IsActive": True}])
        return 200, query_page(
            [{"Id": "00vA", "ContactId": "003A", "Status": "Nurture", "HasResponded": False}]
        )

    def delete(request: requests.PreparedRequest) -> tuple[int, Any]:
        deleted.append(request.url or "")
        return 200, [{"id": "00vA", "success": True, "errors": []}]

    scripted.on("GET", QUERY, query)
    scripted.on("DELETE", COMPOSITE, delete)
    scripted.on(
        "PATCH",
        COMPOSITE,
        lambda r: (200, [{"id": "00TX", "success": False, "errors": [{"statusCode": "ENTITY_IS_DELETED"}]}]),
    )
    actions: list[Action] = [
        ReactivateFromNurture(
            key="r1",
            deal_id="006A",
            rule_id="r",
            explanation=WHY,
            contact_ids=("003A",),
            nurture="Nurture Q3",
        ),
        CloseTask(
            key="c1",
            deal_id="006A",
            rule_id="r",
            explanation=WHY,
            task_id="00TX",
            task_key="cf-x",
            reason=CloseReason.SUPERSEDED,
        ),
    ]
    outcomes = make_connector().apply(actions)
    assert len(deleted) == 1
    assert "ids=00vA" in deleted[0]
    assert "allOrNone=false" in deleted[0]
    assert [o.status for o in outcomes] == [OutcomeStatus.APPLIED, OutcomeStatus.ALREADY_APPLIED]


def test_outage_gives_retry_later_outcomes_not_an_exception(
    make_connector: Callable[..., SalesforceConnector], scripted: ScriptedSalesforce
) -> None:
    """When every attempt meets a 503, the actions come back RETRY_LATER after the retry layer gives up."""
    calls: list[int] = []

    def down(request: requests.PreparedRequest) -> tuple[int, Any]:
        calls.append(1)
        return 503, [{"errorCode": "SERVER_UNAVAILABLE", "message": "maintenance"}]

    scripted.on("POST", COMPOSITE, down)
    scripted.on("GET", QUERY_ALL, lambda r: (200, query_page([])))
    (outcome,) = make_connector().apply([create(1)])
    assert outcome.status is OutcomeStatus.RETRY_LATER
    assert len(calls) == 4  # the configured attempts
