"""Unit tests for the pure SOQL builders (soql.py) and action payloads (payloads.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from urllib.parse import urlencode

import pytest

from connectors.salesforce import soql
from connectors.salesforce.options import DEFAULT_OPPORTUNITY_FIELDS, SalesforceOptions
from connectors.salesforce.payloads import (
    DESCRIPTION_MAX,
    PayloadConfig,
    create_task_record,
    description,
    opportunity_changes,
    update_task_record,
)
from policies.model import (
    ChangeStage,
    CreateTask,
    Evidence,
    Explanation,
    FollowupState,
    Priority,
    SetDealFields,
    TaskType,
    UpdateTask,
)

SHAPE = soql.OpportunityShape(
    deal_fields=("NextStep", "Followup_State__c", "Budget__c"),
    task_key_field="Followup_Key__c",
    task_rule_field="Followup_Rule__c",
    activities_per_deal=50,
)
CONFIG = PayloadConfig(
    opportunity_fields=DEFAULT_OPPORTUNITY_FIELDS,
    task_key_field="Followup_Key__c",
    task_rule_field="Followup_Rule__c",
    open_task_status="Not Started",
    closed_task_status="Completed",
    default_time_zone="UTC",
)
WHY = Explanation(
    "No reply for 14 days", (Evidence("unanswered touches", "3"), Evidence("last inbound", "2026-02-01"))
)


def test_quote_escapes_quotes_and_backslashes() -> None:
    """String literals escape the characters SOQL treats specially."""
    assert soql.quote("O'Brien\\x") == "'O\\'Brien\\\\x'"


def test_datetime_literal_is_utc_floored_and_refuses_naive() -> None:
    """dateTime literals are unquoted UTC, floored to the second; naive datetimes are refused."""
    local = datetime(2026, 3, 1, 10, 0, 5, 900_000, tzinfo=timezone(timedelta(hours=2)))
    assert soql.datetime_literal(local) == "2026-03-01T08:00:05Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        soql.datetime_literal(datetime(2026, 3, 1))


def test_in_list_and_chunks() -> None:
    """IN lists are quoted; chunking keeps order and size; empty IN lists are refused."""
    assert soql.in_list(["a", "b"]) == "('a','b')"
    assert [list(c) for c in soql.chunked(["1", "2", "3"], 2)] == [["1", "2"], ["3"]]
    with pytest.raises(ValueError, match="at least one"):
        soql.in_list([])


def test_opportunity_query_has_subqueries_and_every_field_once() -> None:
    """The aggregate query selects roles, Tasks (with our key fields) and Events as subqueries."""
    text = SHAPE.all_opportunities()
    assert text.count("NextStep") == 1
    assert "Budget__c" in text
    assert "FROM OpportunityContactRoles" in text
    assert "Followup_Key__c, Followup_Rule__c FROM Tasks ORDER BY CreatedDate DESC LIMIT 50" in text
    assert "FROM Events ORDER BY StartDateTime DESC LIMIT 50" in text
    assert text.endswith("FROM Opportunity ORDER BY Id")


def test_incremental_queries() -> None:
    """Changed-since queries filter on SystemModstamp with >= and order by it; the opportunities' one reads
    no child sets and says who wrote each record last."""
    since = datetime(2026, 3, 1, tzinfo=UTC)
    changed = SHAPE.changed_records_since(since)
    assert changed.endswith(
        "LastModifiedById FROM Opportunity WHERE SystemModstamp >= 2026-03-01T00:00:00Z "
        "ORDER BY SystemModstamp, Id"
    )
    assert "(SELECT" not in changed
    assert soql.changed_parents("Task", "WhatId", since, "Opportunity") == (
        "SELECT WhatId, SystemModstamp FROM Task WHERE SystemModstamp >= 2026-03-01T00:00:00Z "
        "AND What.Type = 'Opportunity' ORDER BY SystemModstamp"
    )
    assert soql.emails_all().endswith("WHERE RelatedTo.Type = 'Opportunity' ORDER BY RelatedToId, Id")


def test_create_task_payload_uses_owner_local_due_date_and_key() -> None:
    """ActivityDate is the due day in the owner's zone; the key and rule travel in custom fields."""
    action = CreateTask(
        key="cf-aaaaaaaaaaaaaaaaaaaa",
        deal_id="006A",
        rule_id="no-reply",
        explanation=WHY,
        owner_id="005A",
        subject="Call Ada",
        body="Ask about the budget.",
        due_at=datetime(2026, 3, 6, 1, 30, tzinfo=UTC),  # still March 5 in Los Angeles
        task_type=TaskType.CALL,
        priority=Priority.HIGH,
        contact_id="003A",
    )
    record = create_task_record(action, "America/Los_Angeles", CONFIG)
    assert record["ActivityDate"] == "2026-03-05"
    assert (record["Type"], record["TaskSubtype"], record["Priority"]) == ("Call", "Task", "High")
    assert (record["WhatId"], record["WhoId"], record["OwnerId"]) == ("006A", "003A", "005A")
    assert (record["Followup_Key__c"], record["Followup_Rule__c"]) == ("cf-aaaaaaaaaaaaaaaaaaaa", "no-reply")
    assert "- unanswered touches: 3" in record["Description"]


def test_description_is_truncated_to_the_field_limit() -> None:
    """Descriptions never exceed Salesforce's 32,000 characters."""
    assert len(description("x" * 40_000, WHY)) == DESCRIPTION_MAX


def test_update_task_payload_holds_only_changed_fields() -> None:
    """An UpdateTask record carries the id and just the fields the action sets."""
    action = UpdateTask(
        key="k",
        deal_id="006A",
        rule_id="r",
        explanation=WHY,
        task_id="00TA",
        task_key="cf-x",
        priority=Priority.LOW,
    )
    assert update_task_record(action, None, CONFIG) == {
        "attributes": {"type": "Task"},
        "id": "00TA",
        "Priority": "Low",
    }


def test_opportunity_changes_map_canonical_names_and_format_values() -> None:
    """DealField names map to Opportunity fields; dates, datetimes and enums become JSON strings."""
    action = SetDealFields(
        key="k",
        deal_id="006A",
        rule_id="r",
        explanation=WHY,
        fields={
            "followup_state": FollowupState.NURTURE,
            "followup_state_since": datetime(2026, 3, 1, 9, tzinfo=UTC),
            "next_step_date": date(2026, 3, 9),
            "Budget__c": 10,
        },
    )
    assert opportunity_changes(action, CONFIG) == {
        "Followup_State__c": "nurture",
        "Followup_State_Since__c": "2026-03-01T09:00:00Z",
        "Followup_Next_Step_Date__c": "2026-03-09",
        "Budget__c": 10,
    }
    stage = ChangeStage(
        key="k",
        deal_id="006A",
        rule_id="r",
        explanation=WHY,
        pipeline_id="default",
        stage_id="Closed Lost",
        close_reason="No budget",
    )
    assert opportunity_changes(stage, CONFIG) == {
        "StageName": "Closed Lost",
        "Followup_Close_Reason__c": "No budget",
    }


def test_longest_id_lists_keep_the_request_line_under_salesforce_limit() -> None:
    """At the largest ids_per_query the encoded query URL leaves room for headers within 16,384 bytes."""
    options = SalesforceOptions.model_validate(
        {
            "auth": {"kind": "access_token", "access_token_env": "T"},
            "instance_url": "https://org.my.salesforce.com",
        }
    )
    ids = [
        f"0065g{n:010d}AAA" for n in range(SalesforceOptions.model_fields["ids_per_query"].metadata[-1].le)
    ]
    shape = soql.OpportunityShape(
        tuple(options.opportunity_fields.values()), "Followup_Key__c", "Followup_Rule__c", 200
    )
    since = datetime(2026, 1, 1, tzinfo=UTC)
    for text in (shape.by_ids(ids), shape.changed_records_since(since), soql.contact_tasks(shape, ids)):
        url = "https://org.my.salesforce.com/services/data/v62.0/query/?" + urlencode({"q": text})
        assert len(url) < 15_500


def test_stage_change_writes_the_stage_name_the_policy_id_maps_to() -> None:
    """A ChangeStage to the policy's ``closedlost`` writes the org's StageName "Closed Lost"."""
    mapped = replace(CONFIG, stage_names={"closedlost": "Closed Lost"})
    stage = ChangeStage(
        key="k", deal_id="006A", rule_id="r", explanation=WHY, pipeline_id="default", stage_id="closedlost"
    )
    assert opportunity_changes(stage, mapped) == {"StageName": "Closed Lost"}
    assert opportunity_changes(stage, CONFIG) == {"StageName": "closedlost"}  # unmapped ids pass through
