"""Opportunity history the Salesforce way: OpportunityHistory and OpportunityFieldHistory queryable through
SOQL with their documented fields, seeded from the dataset, written by the org on our own updates;
FieldDefinition.IsFieldHistoryTracked; at most 20 tracked fields; history gone with its opportunity."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from crm_sandbox.dataset import Dataset, generate
from crm_sandbox.salesforce import SalesforceSandbox, running_salesforce_sandbox
from crm_sandbox.salesforce.history import set_history_tracking
from crm_sandbox.salesforce.ids import make_id
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from crm_sandbox_tests.salesforce_helpers import sobject, trusted_session

NOW = datetime(2026, 3, 4, 10, 15, tzinfo=UTC)


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(5, 40, NOW, history=True)


@pytest.fixture
def box(dataset: Dataset) -> Iterator[SalesforceSandbox]:
    with running_salesforce_sandbox(dataset=dataset, now=NOW) as sandbox:
        yield sandbox


@pytest.fixture
def sf(box: SalesforceSandbox) -> Salesforce:
    return Salesforce(
        instance_url=box.instance_url, session_id=box.access_token, session=trusted_session(box.ca_file)
    )


def _rows(sf: Salesforce, soql: str) -> list[dict[str, object]]:
    return [{k: v for k, v in r.items() if k != "attributes"} for r in sf.query_all(soql)["records"]]


def test_every_opportunity_has_its_stage_history_from_creation(sf: Salesforce, dataset: Dataset) -> None:
    """One OpportunityHistory row per moment stage, amount or close date changed; the first at CreatedDate,
    the last with the opportunity's current values."""
    opportunities = _rows(sf, "SELECT Id, StageName, Amount, CloseDate, CreatedDate FROM Opportunity")
    history = _rows(
        sf,
        "SELECT OpportunityId, StageName, Amount, ExpectedRevenue, CloseDate, Probability, ForecastCategory, "
        "PrevAmount, PrevCloseDate, CreatedDate, CreatedById, SystemModstamp, IsDeleted "
        "FROM OpportunityHistory ORDER BY OpportunityId, CreatedDate",
    )
    for opportunity in opportunities:
        rows = [r for r in history if r["OpportunityId"] == opportunity["Id"]]
        assert rows, opportunity["Id"]
        assert rows[0]["CreatedDate"] == opportunity["CreatedDate"]
        last = rows[-1]
        assert (last["StageName"], last["Amount"], last["CloseDate"]) == (
            opportunity["StageName"],
            opportunity["Amount"],
            opportunity["CloseDate"],
        )
        assert rows[0]["PrevAmount"] is None
    assert len(history) > len(opportunities)  # the generated stories move their deals
    stage_moves = sum(1 for r in dataset.history if r.field == "stage")
    assert len({(r["OpportunityId"], r["StageName"]) for r in history}) <= stage_moves


def test_field_history_rows_have_old_and_new_values_of_tracked_fields(sf: Salesforce) -> None:
    """OpportunityFieldHistory: Field, DataType, OldValue, NewValue, CreatedDate; each row's OldValue is the
    NewValue of the field's row before it; an owner change is two rows named Owner (ids, then names)."""
    rows = _rows(
        sf,
        "SELECT OpportunityId, Field, DataType, OldValue, NewValue, CreatedDate, CreatedById, IsDeleted "
        "FROM OpportunityFieldHistory ORDER BY OpportunityId, Field, CreatedDate",
    )
    assert {"NextStep", "Followup_Next_Step_Date__c"} <= {r["Field"] for r in rows}
    previous: dict[tuple[object, object, object], object] = {}
    for row in rows:
        key = (row["OpportunityId"], row["Field"], row["DataType"])
        if key in previous:
            assert row["OldValue"] == previous[key]
        previous[key] = row["NewValue"]
    owners = [r for r in rows if r["Field"] == "Owner"]
    if owners:
        assert {r["DataType"] for r in owners} == {"EntityId", "Text"}
        ids = [r for r in owners if r["DataType"] == "EntityId"]
        assert all(str(r["NewValue"]).startswith("005") for r in ids)


def test_our_update_writes_both_histories(sf: Salesforce, box: SalesforceSandbox) -> None:
    """An update of StageName and NextStep through the REST API: a stage history row with the previous
    amount, and a NextStep field history row with the old and the new value, at the org's time."""
    [opportunity] = _rows(sf, "SELECT Id, NextStep, Amount FROM Opportunity WHERE IsClosed = false LIMIT 1")
    box.control.set_clock(NOW + timedelta(days=1))
    sobject(sf, "Opportunity").update(
        str(opportunity["Id"]), {"StageName": "Closed Lost", "NextStep": "none"}
    )
    where = f"WHERE OpportunityId = '{opportunity['Id']}' ORDER BY CreatedDate DESC LIMIT 1"
    [stage] = _rows(sf, f"SELECT StageName, PrevAmount, CreatedDate FROM OpportunityHistory {where}")
    assert stage["StageName"] == "Closed Lost"
    assert stage["PrevAmount"] == opportunity["Amount"]
    assert str(stage["CreatedDate"]).startswith("2026-03-05")
    [change] = _rows(
        sf,
        "SELECT Field, OldValue, NewValue FROM OpportunityFieldHistory "
        f"WHERE OpportunityId = '{opportunity['Id']}' AND Field = 'NextStep' "
        "ORDER BY CreatedDate DESC LIMIT 1",
    )
    assert change == {"Field": "NextStep", "OldValue": opportunity["NextStep"], "NewValue": "none"}


def test_an_untracked_field_has_no_field_history(sf: Salesforce, box: SalesforceSandbox) -> None:
    """FieldDefinition says which fields are tracked; turning one off stops its rows."""
    tracked = {
        str(r["QualifiedApiName"])
        for r in _rows(
            sf,
            "SELECT QualifiedApiName, IsFieldHistoryTracked FROM FieldDefinition "
            "WHERE EntityDefinition.QualifiedApiName = 'Opportunity' AND IsFieldHistoryTracked = true",
        )
    }
    assert {"NextStep", "OwnerId", "Followup_Readiness__c"} <= tracked
    set_history_tracking(box.org.store, "Opportunity", sorted(tracked - {"NextStep"}))
    [opportunity] = _rows(sf, "SELECT Id FROM Opportunity WHERE IsClosed = false LIMIT 1")
    sobject(sf, "Opportunity").update(str(opportunity["Id"]), {"NextStep": "Untracked now"})
    rows = _rows(
        sf,
        f"SELECT NewValue FROM OpportunityFieldHistory WHERE OpportunityId = '{opportunity['Id']}' "
        "AND Field = 'NextStep'",
    )
    assert "Untracked now" not in [r["NewValue"] for r in rows]
    flags = _rows(
        sf,
        "SELECT IsFieldHistoryTracked FROM FieldDefinition "
        "WHERE EntityDefinition.QualifiedApiName = 'Opportunity' AND QualifiedApiName = 'NextStep'",
    )
    assert flags == [{"IsFieldHistoryTracked": False}]


def test_at_most_20_fields_can_be_tracked(box: SalesforceSandbox) -> None:
    fields = [f.name for f in box.org.schema.objects["opportunity"].fields.values() if f.updateable][:21]
    assert len(fields) == 21
    with pytest.raises(ValueError, match="at most 20 fields"):
        set_history_tracking(box.org.store, "Opportunity", fields)


def test_history_objects_are_read_only_and_children_of_the_opportunity(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest):
        sobject(sf, "OpportunityHistory").create(
            {"OpportunityId": make_id("006", 1), "StageName": "Discovery"}
        )
    [row] = sf.query(
        "SELECT Id, (SELECT StageName FROM OpportunityHistories), (SELECT Field FROM Histories) "
        f"FROM Opportunity WHERE Id = '{make_id('006', 1)}'"
    )["records"]
    assert row["OpportunityHistories"]["totalSize"] >= 1


def test_deleting_an_opportunity_deletes_its_history(sf: Salesforce) -> None:
    opportunity_id = make_id("006", 2)
    sobject(sf, "Opportunity").delete(opportunity_id)
    where = f"WHERE OpportunityId = '{opportunity_id}'"
    assert sf.query(f"SELECT Id FROM OpportunityHistory {where}")["totalSize"] == 0
    assert (
        sf.query_all(f"SELECT Id, IsDeleted FROM OpportunityHistory {where}", include_deleted=True)[
            "totalSize"
        ]
        >= 1
    )


def test_without_dataset_history_each_opportunity_has_its_creation_row() -> None:
    with running_salesforce_sandbox(seed=3, deals=6, now=NOW) as box:
        sf = Salesforce(
            instance_url=box.instance_url, session_id=box.access_token, session=trusted_session(box.ca_file)
        )
        assert sf.query("SELECT COUNT() FROM OpportunityHistory")["totalSize"] == 6
        assert sf.query("SELECT COUNT() FROM OpportunityFieldHistory")["totalSize"] == 0
