"""Writes against the Salesforce sandbox through simple-salesforce and raw HTTPS: sObject CRUD, external-id
upsert, sObject Collections, campaign members and the fields Salesforce derives."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from crm_sandbox.salesforce import running_salesforce_sandbox
from crm_sandbox.salesforce.ids import make_id
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceResourceNotFound,
)

from crm_sandbox_tests.salesforce_helpers import API, error_objects, response_body, trusted_session

NOW = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def box():
    with running_salesforce_sandbox(seed=11, deals=40, now=NOW) as sandbox:
        sandbox.control.snapshot("seeded")
        yield sandbox


@pytest.fixture
def sf(box):
    with trusted_session(box.ca_file) as session:
        yield Salesforce(instance_url=box.instance_url, session_id=box.access_token, session=session)
    box.control.restore("seeded")


@pytest.fixture
def raw(box):
    with trusted_session(box.ca_file) as session:
        session.headers["Authorization"] = f"Bearer {box.access_token}"
        yield session


def first_id(sf: Salesforce, soql: str) -> str:
    return str(sf.query(soql)["records"][0]["Id"])


def test_task_create_get_update_delete(sf, raw, box):
    """Create is 201 with {id, success, errors}; update and delete are 204; a deleted record is 404."""
    opp = first_id(sf, "SELECT Id FROM Opportunity WHERE IsClosed = false ORDER BY Id LIMIT 1")
    url = f"{box.instance_url}/services/data/{API}/sobjects/Task/"
    response = raw.post(
        url,
        json={
            "Subject": "Call back",
            "WhatId": opp,
            "ActivityDate": "2026-01-20",
            "TaskSubtype": "Call",
            "Followup_Key__c": "cf-0001",
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert body == {"id": body["id"], "success": True, "errors": []}
    task_id = body["id"]
    task = sf.Task.get(task_id)
    assert (task["Status"], task["IsClosed"], task["Priority"], task["TaskSubtype"]) == (
        "Not Started",
        False,
        "Normal",
        "Call",
    )
    assert task["OwnerId"] == box.org.store.integration_user_id
    assert task["AccountId"] == sf.Opportunity.get(opp)["AccountId"]
    assert sf.Task.update(task_id, {"Status": "Completed"}) == 204
    done = sf.Task.get(task_id)
    assert done["IsClosed"] is True
    assert done["CompletedDateTime"] is not None
    assert done["SystemModstamp"] >= task["SystemModstamp"]
    assert sf.Opportunity.get(opp)["LastActivityDate"] == "2026-01-20"
    assert sf.Task.delete(task_id) == 204
    with pytest.raises(SalesforceResourceNotFound) as info:
        sf.Task.get(task_id)
    assert error_objects(info.value)[0]["errorCode"] == "ENTITY_IS_DELETED"


@pytest.mark.parametrize(
    ("body", "code", "fields"),
    [
        ({"Subject": "x", "Bogus__c": 1}, "INVALID_FIELD", []),
        ({"Subject": "x", "IsClosed": True}, "INVALID_FIELD_FOR_INSERT_UPDATE", ["IsClosed"]),
        ({"Subject": "x", "CallType": "Sideways"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", ["CallType"]),
        ({"Subject": "x", "Status": "Parked"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", ["Status"]),
        ({"Subject": "x", "Priority": "Urgent"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", ["Priority"]),
        ({"Subject": "x" * 256}, "STRING_TOO_LONG", ["Subject"]),
        ({"Subject": "x", "WhatId": "not-an-id"}, "MALFORMED_ID", ["WhatId"]),
        ({"Subject": "x", "WhatId": make_id("006", 999_999)}, "INVALID_CROSS_REFERENCE_KEY", ["WhatId"]),
        ({"Subject": "x", "ActivityDate": "tomorrow"}, "JSON_PARSER_ERROR", None),
    ],
)
def test_invalid_task_bodies_are_rejected_with_salesforce_codes(sf, body, code, fields):
    """Bad create bodies raise 400 with the errorCode (and fields) Salesforce reports."""
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.Task.create(body)
    error = error_objects(info.value)[0]
    assert error["errorCode"] == code
    assert error.get("fields") == fields


def test_required_fields_and_create_only_fields(sf):
    """A missing required field is REQUIRED_FIELD_MISSING; TaskSubtype cannot be updated."""
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.Opportunity.create({"Name": "No stage"})
    assert error_objects(info.value)[0] == {
        "message": "Required fields are missing: [StageName, CloseDate]",
        "errorCode": "REQUIRED_FIELD_MISSING",
        "fields": ["StageName", "CloseDate"],
    }
    task_id = sf.Task.create({"Subject": "x"})["id"]
    with pytest.raises(SalesforceMalformedRequest) as update_info:
        sf.Task.update(task_id, {"TaskSubtype": "Call"})
    assert error_objects(update_info.value)[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


def test_opportunity_stage_change_derives_closed_won_and_probability(sf):
    """Moving to a won stage sets IsClosed/IsWon/Probability from OpportunityStage."""
    won = sf.query("SELECT MasterLabel, DefaultProbability FROM OpportunityStage WHERE IsWon = true LIMIT 1")
    label = won["records"][0]["MasterLabel"]
    opp = first_id(sf, "SELECT Id FROM Opportunity WHERE IsClosed = false ORDER BY Id LIMIT 1")
    before = sf.Opportunity.get(opp)
    assert sf.Opportunity.update(opp, {"StageName": label, "Followup_State__c": "stopped"}) == 204
    after = sf.Opportunity.get(opp)
    assert (after["IsClosed"], after["IsWon"], after["Probability"]) == (True, True, 100.0)
    assert after["ForecastCategoryName"] == "Closed"
    assert after["Followup_State__c"] == "stopped"
    assert after["SystemModstamp"] > before["SystemModstamp"]


def test_upsert_by_external_id_creates_then_updates(sf, raw, box):
    """PATCH sobjects/Task/Followup_Key__c/<key> is 201 on insert, 200 with created=false on update."""
    assert sf.Task.upsert("Followup_Key__c/cf-upsert-1", {"Subject": "First"}) == 201
    assert sf.Task.upsert("Followup_Key__c/cf-upsert-1", {"Subject": "Second"}) == 200
    task = sf.Task.get_by_custom_id("Followup_Key__c", "cf-upsert-1")
    assert (task["Subject"], task["Followup_Key__c"]) == ("Second", "cf-upsert-1")
    response = raw.patch(
        f"{box.instance_url}/services/data/{API}/sobjects/Task/Followup_Key__c/cf-upsert-1",
        json={"Subject": "Third"},
    )
    assert response.json() == {"id": task["Id"], "success": True, "errors": [], "created": False}
    old_api = raw.patch(
        f"{box.instance_url}/services/data/v45.0/sobjects/Task/Followup_Key__c/cf-upsert-1",
        json={"Priority": "Low"},
    )
    assert old_api.status_code == 204
    keys = sf.query("SELECT Id FROM Task WHERE Followup_Key__c IN ('cf-upsert-1', 'cf-none')")
    assert keys["totalSize"] == 1


def test_upsert_matching_several_records_is_300(sf):
    """A non-unique external id matching twice answers 300 with the record URLs."""
    sf.Task.create({"Subject": "a", "Followup_Key__c": "cf-dup"})
    sf.Task.create({"Subject": "b", "Followup_Key__c": "cf-dup"})
    with pytest.raises(SalesforceMoreThanOneRecord) as info:
        sf.Task.upsert("Followup_Key__c/cf-dup", {"Subject": "c"})
    urls = response_body(info.value)
    assert isinstance(urls, list)
    assert len(urls) == 2
    prefix = f"/services/data/{API}/sobjects/Task/00T"
    assert all(isinstance(url, str) and url.startswith(prefix) for url in urls), urls


def test_collections_create_reports_per_record_results(sf):
    """composite/sobjects POST answers 200 with a SaveResult per record; failures use statusCode."""
    opp = first_id(sf, "SELECT Id FROM Opportunity ORDER BY Id LIMIT 1")
    results = sf.restful(
        "composite/sobjects",
        method="POST",
        json={
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Task"}, "Subject": "ok 1", "WhatId": opp},
                {"attributes": {"type": "Task"}, "Subject": "bad", "CallType": "Nope"},
                {
                    "attributes": {"type": "Event"},
                    "Subject": "meet",
                    "StartDateTime": "2026-01-20T10:00:00Z",
                    "DurationInMinutes": 30,
                    "WhatId": opp,
                },
            ],
        },
    )
    assert [r["success"] for r in results] == [True, False, True]
    assert results[1] == {
        "success": False,
        "errors": [
            {
                "statusCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                "message": "Call Type: bad value for restricted picklist field: Nope",
                "fields": ["CallType"],
            }
        ],
    }
    event = sf.Event.get(results[2]["id"])
    assert event["EndDateTime"] == "2026-01-20T10:30:00.000+0000"


def test_collections_all_or_none_rolls_everything_back(sf):
    """With allOrNone one failure rolls back the others, which report ALL_OR_NONE_OPERATION_ROLLED_BACK."""
    before = sf.query("SELECT COUNT() FROM Task")["totalSize"]
    results = sf.restful(
        "composite/sobjects",
        method="POST",
        json={
            "allOrNone": True,
            "records": [
                {"attributes": {"type": "Task"}, "Subject": "ok"},
                {"attributes": {"type": "Task"}, "Subject": "bad", "Nope__c": 1},
            ],
        },
    )
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[1]["errors"][0]["statusCode"] == "INVALID_FIELD"
    assert all(r["success"] is False for r in results)
    assert sf.query("SELECT COUNT() FROM Task")["totalSize"] == before


def test_collections_update_and_delete(sf):
    """PATCH updates records by id and attributes.type; DELETE ?ids= deletes them."""
    ids = [sf.Task.create({"Subject": f"t{i}"})["id"] for i in range(3)]
    updated = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={
            "records": [{"attributes": {"type": "Task"}, "id": i, "Status": "Completed"} for i in ids]
            + [{"attributes": {"type": "Task"}, "Status": "Completed"}]
        },
    )
    assert [r["success"] for r in updated] == [True, True, True, False]
    assert updated[3]["errors"][0]["statusCode"] == "MISSING_ARGUMENT"
    assert (
        sf.query(f"SELECT COUNT() FROM Task WHERE IsClosed = true AND Id IN ('{ids[0]}')")["totalSize"] == 1
    )
    deleted = sf.restful(f"composite/sobjects?ids={','.join(ids)}&allOrNone=false", method="DELETE")
    assert deleted == [{"id": i, "success": True, "errors": []} for i in ids]
    again = sf.restful(f"composite/sobjects?ids={ids[0]}", method="DELETE")
    assert again[0]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"


def test_collections_over_200_records_is_exceeded_id_limit(sf):
    """More than 200 records in one call is rejected whole with 400 EXCEEDED_ID_LIMIT."""
    records = [{"attributes": {"type": "Task"}, "Subject": str(i)} for i in range(201)]
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.restful("composite/sobjects", method="POST", json={"records": records})
    assert error_objects(info.value)[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


def test_campaign_membership_and_duplicate_value(sf):
    """A new campaign gets Sent/Responded statuses; adding the same contact twice is DUPLICATE_VALUE."""
    campaign = sf.Campaign.create({"Name": "Nurture Q1", "IsActive": True})["id"]
    statuses = sf.query(
        f"SELECT Label, IsDefault, HasResponded FROM CampaignMemberStatus WHERE CampaignId = '{campaign}' "
        "ORDER BY SortOrder"
    )["records"]
    assert [(s["Label"], s["IsDefault"], s["HasResponded"]) for s in statuses] == [
        ("Sent", True, False),
        ("Responded", False, True),
    ]
    sf.CampaignMemberStatus.create({"CampaignId": campaign, "Label": "Nurture", "IsDefault": False})
    contact = first_id(sf, "SELECT Id FROM Contact ORDER BY Id LIMIT 1")
    member = sf.CampaignMember.create({"CampaignId": campaign, "ContactId": contact, "Status": "Nurture"})
    assert member["success"] is True
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.CampaignMember.create({"CampaignId": campaign, "ContactId": contact})
    assert error_objects(info.value) == [
        {"message": "Already a campaign member.", "errorCode": "DUPLICATE_VALUE", "fields": []}
    ]
    assert sf.CampaignMember.update(member["id"], {"Status": "Responded"}) == 204
    assert sf.CampaignMember.get(member["id"])["HasResponded"] is True


def test_snapshot_restore_undoes_writes(sf, box):
    """Restoring a snapshot through the shared control API puts the data back exactly."""
    box.control.snapshot("mark")
    count = sf.query("SELECT COUNT() FROM Task")["totalSize"]
    sf.Task.create({"Subject": "temporary"})
    assert sf.query("SELECT COUNT() FROM Task")["totalSize"] == count + 1
    box.control.restore("mark")
    assert sf.query("SELECT COUNT() FROM Task")["totalSize"] == count
    assert sf.query("SELECT COUNT() FROM Task WHERE Subject = 'temporary'")["totalSize"] == 0


def test_last_activity_date_recalculation_moves_system_modstamp_only(sf, box):
    """A closed Task that changes its Opportunity's LastActivityDate bumps the opportunity's SystemModstamp,
    not its LastModifiedDate (Salesforce help 000387261); an open Task, which leaves LastActivityDate as it
    is, moves neither."""
    opp = first_id(sf, "SELECT Id FROM Opportunity WHERE IsClosed = false ORDER BY Id LIMIT 1")
    fields = "SELECT LastActivityDate, LastModifiedDate, SystemModstamp FROM Opportunity WHERE Id = '{}'"
    before = sf.query(fields.format(opp))["records"][0]
    try:
        box.control.set_clock(NOW.replace(day=25))
        task = sf.Task.create({"Subject": "Call back", "WhatId": opp, "ActivityDate": "2026-01-30"})["id"]
        opened = sf.query(fields.format(opp))["records"][0]
        box.control.set_clock(NOW.replace(day=26))
        sf.Task.update(task, {"Status": "Completed"})
        closed = sf.query(fields.format(opp))["records"][0]
    finally:
        box.control.set_clock(NOW, ticking=True)
    assert opened == before
    assert closed["LastActivityDate"] == "2026-01-30"
    assert closed["LastModifiedDate"] == before["LastModifiedDate"]
    assert closed["SystemModstamp"].startswith("2026-01-26T09:00:00")


def test_an_opportunity_stage_the_org_does_not_have_is_a_restricted_picklist_error(sf):
    """StageName takes only the org's OpportunityStage values: another is refused, on create and update,
    and the opportunity keeps its stage."""
    opp = sf.query("SELECT Id, StageName FROM Opportunity WHERE IsClosed = false ORDER BY Id LIMIT 1")
    row = opp["records"][0]
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.Opportunity.update(row["Id"], {"StageName": "Stalled"})
    error = error_objects(info.value)[0]
    assert error["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert error["fields"] == ["StageName"]
    assert "Stalled" in error["message"]
    assert sf.Opportunity.get(row["Id"])["StageName"] == row["StageName"]
    with pytest.raises(SalesforceMalformedRequest):
        sf.Opportunity.create({"Name": "x", "StageName": "Stalled", "CloseDate": "2026-02-01"})
    stage = sf.query("SELECT MasterLabel FROM OpportunityStage WHERE IsActive = true LIMIT 1")
    assert sf.Opportunity.update(row["Id"], {"StageName": stage["records"][0]["MasterLabel"]}) == 204
