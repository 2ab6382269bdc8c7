"""The history mappings on plain wire dicts: HubSpot property versions and Salesforce history rows become
``FieldVersion``s with the deal mapping's types and bounds; a bad value names its place."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from connectors.history import FieldVersion
from connectors.hubspot.history import history_properties, versions_of
from connectors.hubspot.options import HubSpotOptions
from connectors.salesforce.history import TrackedField, change_versions, stage_versions, tracked_fields
from connectors.salesforce.options import DEFAULT_OPPORTUNITY_FIELDS
from connectors.values import BadValue

T1 = "2026-01-05T09:00:00.000Z"
T2 = "2026-02-01T10:30:00.000Z"
AT1 = datetime(2026, 1, 5, 9, tzinfo=UTC)
AT2 = datetime(2026, 2, 1, 10, 30, tzinfo=UTC)
HUBSPOT = history_properties(
    HubSpotOptions.model_validate({"access_token_env": "X"}), ["region"], {"region": "string"}
)


def _version(value: str, timestamp: str) -> dict[str, str]:
    return {"value": value, "timestamp": timestamp, "sourceType": "CRM_UI"}


def test_hubspot_versions_newest_first_become_typed_changes_oldest_first() -> None:
    record = {
        "id": "7",
        "propertiesWithHistory": {
            "dealstage": [_version("closedwon", T2), _version("qualifiedtobuy", T1)],
            "amount": [_version("12000.5", T2), _version("", T1)],
            "closedate": [_version("2026-03-31T00:00:00.000Z", T1)],
            "followup_agreed_interval_days": [_version("14", T2)],
            "followup_agreed_channel": [_version("CALL", T2)],
            "followup_readiness": [_version("not a word we know", T2)],
            "region": [_version("north", T1)],
            "hs_lastmodifieddate": [_version(T2, T2)],  # not asked for: ignored
        },
    }
    assert versions_of(record, HUBSPOT) == [
        FieldVersion(AT1, "stage", "qualifiedtobuy"),
        FieldVersion(AT2, "stage", "closedwon"),
        FieldVersion(AT1, "amount", None),
        FieldVersion(AT2, "amount", 12000.5),
        FieldVersion(AT1, "close_date", date(2026, 3, 31)),
        FieldVersion(AT2, "agreed_interval_days", 14),
        FieldVersion(AT2, "agreed_channel", "call"),
        FieldVersion(AT2, "readiness", "unknown"),  # as the deal mapping reads an option it does not know
        FieldVersion(AT1, "region", "north"),
    ]


def test_of_two_hubspot_versions_at_one_moment_the_one_listed_first_is_the_later() -> None:
    record = {"propertiesWithHistory": {"hs_next_step": [_version("second", T1), _version("first", T1)]}}
    assert [v.value for v in versions_of(record, HUBSPOT)] == ["first", "second"]


@pytest.mark.parametrize(
    ("prop", "version", "field"),
    [
        ("amount", _version("a lot", T1), f"amount@{T1}"),
        ("followup_agreed_interval_days", _version("1e12", T1), f"followup_agreed_interval_days@{T1}"),
        ("closedate", _version("9999-12-31", T1), f"closedate@{T1}"),
        ("dealstage", {"value": "x", "timestamp": "yesterday"}, "dealstage@yesterday"),
    ],
)
def test_a_bad_hubspot_version_names_the_property_and_its_timestamp(
    prop: str, version: dict[str, str], field: str
) -> None:
    with pytest.raises(BadValue) as bad:
        versions_of({"propertiesWithHistory": {prop: [version]}}, HUBSPOT)
    assert bad.value.field == field


SF_FIELDS = {f.sf_name: f for f in tracked_fields(DEFAULT_OPPORTUNITY_FIELDS, ["Region__c"])}
CREATED = datetime(2025, 12, 1, 8, tzinfo=UTC)
OPP = "0065g0000000001AAA"


def _row(created: str, **values: object) -> dict[str, object]:
    return {"OpportunityId": OPP, "CreatedDate": created, **values}


def test_salesforce_stage_history_rows_are_versions_where_they_change() -> None:
    rows = [
        _row("2026-02-01T10:30:00.000+0000", StageName="Closed Won", Amount=12000.0, CloseDate="2026-03-31"),
        _row(
            "2026-01-05T09:00:00.000+0000", StageName="Qualified To Buy", Amount=None, CloseDate="2026-03-31"
        ),
    ]
    assert stage_versions(rows, {"Closed Won": "closedwon", "Qualified To Buy": "qualifiedtobuy"}) == [
        FieldVersion(AT1, "stage", "qualifiedtobuy"),
        FieldVersion(AT1, "close_date", date(2026, 3, 31)),
        FieldVersion(AT2, "stage", "closedwon"),
        FieldVersion(AT2, "amount", 12000.0),
    ]


def test_salesforce_field_history_old_value_holds_since_creation_and_owner_rows_use_ids() -> None:
    rows = [
        _row(
            "2026-01-05T09:00:00.000+0000", Field="NextStep", OldValue="Call back", NewValue="Send the offer"
        ),
        _row("2026-02-01T10:30:00.000+0000", Field="NextStep", OldValue="Send the offer", NewValue=None),
        _row("2026-01-05T09:00:00.000+0000", Field="Owner", OldValue="Alex Rep", NewValue="Kim Rep"),
        _row(
            "2026-01-05T09:00:00.000+0000",
            Field="Owner",
            OldValue="0055g0000000001AAA",
            NewValue="0055g0000000002AAA",
        ),
        _row(
            "2026-01-05T09:00:00.000+0000",
            Field="Followup_Agreed_Interval_Days__c",
            OldValue=None,
            NewValue=14.0,
        ),
        _row("2026-01-05T09:00:00.000+0000", Field="created"),
    ]
    assert change_versions(rows, SF_FIELDS, CREATED) == [
        FieldVersion(CREATED, "next_step", "Call back"),
        FieldVersion(AT1, "next_step", "Send the offer"),
        FieldVersion(AT2, "next_step", None),
        FieldVersion(CREATED, "owner", "0055g0000000001AAA"),
        FieldVersion(AT1, "owner", "0055g0000000002AAA"),
        FieldVersion(AT1, "agreed_interval_days", 14),  # empty since creation: no version before
    ]


def test_a_bad_salesforce_history_value_names_the_row() -> None:
    rows = [
        _row(
            "2026-01-05T09:00:00.000+0000", Field="Followup_Next_Step_Date__c", OldValue=None, NewValue="soon"
        )
    ]
    with pytest.raises(BadValue) as bad:
        change_versions(rows, SF_FIELDS, CREATED)
    assert bad.value.field == (
        f"OpportunityFieldHistory.{OPP}.Followup_Next_Step_Date__c@2026-01-05T09:00:00.000+0000"
    )


def test_the_fields_read_are_the_mapped_ones_without_crm_followups_own_state() -> None:
    assert set(SF_FIELDS) == {
        "OwnerId",
        "NextStep",
        "Followup_Next_Step_Why__c",
        "Followup_Next_Step_Date__c",
        "Followup_Agreed_Interval_Days__c",
        "Followup_Agreed_Channel__c",
        "Followup_Readiness__c",
        "Followup_Qualification_Score__c",
        "Followup_Close_Reason__c",
        "Region__c",
    }
    assert isinstance(SF_FIELDS["Region__c"], TrackedField)
    assert "followup_state" not in HUBSPOT
    assert "followup_next_step_why" in HUBSPOT
