"""A bare Salesforce sandbox and its minimal Metadata API, driven through simple-salesforce's ``mdapi``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from crm_sandbox.salesforce import running_salesforce_sandbox
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from crm_sandbox_tests.salesforce_helpers import error_objects, trusted_session

NOW = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def box():
    with running_salesforce_sandbox(seed=5, deals=10, now=NOW, bare=True) as sandbox:
        yield sandbox


@pytest.fixture
def sf(box):
    with trusted_session(box.ca_file) as session:
        client = Salesforce(instance_url=box.instance_url, session_id=box.access_token, session=session)
        # zeep has its own HTTP transport; give it the trusted session, as the setup command does
        client.mdapi._client.transport.session = session
        yield client


def custom_fields(sf: Salesforce, name: str) -> set[str]:
    return {f["name"] for f in getattr(sf, name).describe()["fields"] if f["custom"]}


def test_bare_org_lacks_crm_followup_fields(sf):
    """A bare org describes no custom fields and rejects them in SOQL and DML."""
    assert custom_fields(sf, "Opportunity") == set()
    assert custom_fields(sf, "Task") == set()
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT Followup_State__c FROM Opportunity")
    assert error_objects(info.value)[0]["errorCode"] == "INVALID_FIELD"


def test_create_metadata_adds_fields_to_describe_soql_and_dml(sf):
    """createMetadata of CustomField makes the field real: Activity fields land on Task and Event."""
    md = sf.mdapi
    key = md.CustomField(
        fullName="Activity.Followup_Key__c",
        label="Follow-up Key",
        type=md.FieldType("Text"),
        length=40,
        externalId=True,
    )
    state = md.CustomField(
        fullName="Opportunity.Followup_State__c",
        label="Follow-up State",
        type=md.FieldType("Picklist"),
        valueSet=md.ValueSet(
            valueSetDefinition=md.ValueSetValuesDefinition(
                value=[md.CustomValue(fullName=v, default=False, label=v) for v in ("active", "nurture")],
                sorted=False,
            )
        ),
    )
    md.CustomField.create([key, state])
    task_fields = {f["name"]: f for f in sf.Task.describe()["fields"]}
    assert task_fields["Followup_Key__c"]["externalId"] is True
    assert task_fields["Followup_Key__c"]["length"] == 40
    assert "Followup_Key__c" in custom_fields(sf, "Event")
    picklist = {f["name"]: f for f in sf.Opportunity.describe()["fields"]}["Followup_State__c"]
    assert [p["value"] for p in picklist["picklistValues"]] == ["active", "nurture"]
    sf.Task.create({"Subject": "keyed", "Followup_Key__c": "cf-md-1"})
    assert sf.query("SELECT Id FROM Task WHERE Followup_Key__c = 'cf-md-1'")["totalSize"] == 1
    assert md.CustomField.read(["Activity.Followup_Key__c"]).externalId is True
    with pytest.raises(Exception, match="DUPLICATE_DEVELOPER_NAME"):
        md.CustomField.create([key])


def test_permission_set_upsert_and_assignment(sf, box):
    """upsertMetadata of PermissionSet creates a row that PermissionSetAssignment can point at, once."""
    md = sf.mdapi
    grant = md.PermissionSetFieldPermissions(field="Task.Followup_Key__c", editable=True, readable=True)
    md.PermissionSet.upsert(
        [md.PermissionSet(fullName="CRM_Followup", label="crm-followup", fieldPermissions=[grant])]
    )
    pset = sf.query("SELECT Id, Label FROM PermissionSet WHERE Name = 'CRM_Followup'")["records"]
    assert [p["Label"] for p in pset] == ["crm-followup"]
    user = sf.query(f"SELECT Id FROM User WHERE Username = '{box.username}'")["records"][0]["Id"]
    body = {"AssigneeId": user, "PermissionSetId": pset[0]["Id"]}
    assert sf.PermissionSetAssignment.create(body)["success"] is True
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.PermissionSetAssignment.create(body)
    assert error_objects(info.value)[0]["errorCode"] == "DUPLICATE_VALUE"


def test_metadata_call_with_a_bad_session_is_a_soap_fault(box):
    """A Metadata API call with an unknown session answers a SOAP fault sf:INVALID_SESSION_ID."""
    with trusted_session(box.ca_file) as session:
        response = session.post(
            f"{box.instance_url}/services/Soap/m/62.0/",
            data=(
                '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
                'xmlns:m="http://soap.sforce.com/2006/04/metadata"><soapenv:Header><m:SessionHeader>'
                "<m:sessionId>nope</m:sessionId></m:SessionHeader></soapenv:Header><soapenv:Body>"
                "<m:readMetadata><m:type>CustomField</m:type><m:fullNames>Task.X__c</m:fullNames>"
                "</m:readMetadata></soapenv:Body></soapenv:Envelope>"
            ),
            headers={"Content-Type": "text/xml"},
        )
    assert response.status_code == 500
    assert "<faultcode>sf:INVALID_SESSION_ID</faultcode>" in response.text


def test_metadata_api_can_be_switched_off(sf, box):
    """With the Metadata API off (to test setup's manual fallback) mdapi calls fail with a 404."""
    box.org.metadata_api = False
    try:
        md = sf.mdapi
        with pytest.raises(Exception):  # noqa: B017  (zeep raises whatever its parser trips over)
            md.CustomField.read(["Task.Anything__c"])
        with trusted_session(box.ca_file) as session:
            assert session.post(f"{box.instance_url}/services/Soap/m/62.0/", data="<x/>").status_code == 404
    finally:
        box.org.metadata_api = True


def test_task_status_tells_which_status_closes_a_task(sf):
    """TaskStatus is queryable, as the reference advises, and only Completed closes a task."""
    rows = sf.query("SELECT MasterLabel, IsClosed, IsDefault FROM TaskStatus ORDER BY SortOrder")["records"]
    assert [(r["MasterLabel"], r["IsClosed"]) for r in rows if r["IsClosed"]] == [("Completed", True)]
    assert [r["MasterLabel"] for r in rows if r["IsDefault"]] == ["Not Started"]
    assert all(r["attributes"]["url"].split("/")[-1].startswith("01J") for r in rows)
