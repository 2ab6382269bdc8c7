"""Both connectors' mappings on odd values: a domain record or a rejection with field and reason, no more.

Tables pin the documented decisions (docs/crm-fields.md, "Bounds"); Hypothesis feeds arbitrary property
values (nulls, huge and negative numbers, NaN strings, malformed and far-off dates, long unicode, lists and
objects where text belongs) into every field and checks the contract: ``deal_from_hubspot`` /
``deal_from_records`` return a ``Deal`` or raise ``SkipRecord`` with a reason, never another exception, and
a deal they return can be planned by the engine without an exception.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.errors import SkipRecord
from connectors.hubspot.mapping import activity_from_hubspot, auto_task_from_hubspot, deal_from_hubspot
from connectors.hubspot.options import DEFAULT_DEAL_PROPERTIES
from connectors.salesforce.mapping import deal_from_records
from connectors.values import BadValue
from policies.model import Deal, Owner
from policies.planner import plan
from tests.connectors.hubspot.test_mapping import _deal as hubspot_deal
from tests.connectors.hubspot.test_mapping import _pipelines as hubspot_pipelines
from tests.connectors.salesforce.records import OWNER_ID, email, event, opportunity, task
from tests.connectors.salesforce.test_mapping import NOW as SF_NOW
from tests.connectors.salesforce.test_mapping import PIPELINE as SF_PIPELINE
from tests.connectors.salesforce.test_mapping import config as sf_config
from tests.unit.builders import policy

NOW = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)
POLICY = policy()
T = TypeVar("T")
HUGE = "1" + "0" * 400  # what HubSpot's API takes for a number (digits only) and floats read as inf


def _hubspot(**props: Any) -> Deal:
    return deal_from_hubspot(hubspot_deal(**props), hubspot_pipelines(), DEFAULT_DEAL_PROPERTIES)


def _salesforce(record: dict[str, Any], emails: list[dict[str, Any]] | None = None) -> Deal:
    return deal_from_records(record, emails or [], config=sf_config(), pipeline=SF_PIPELINE, now=SF_NOW)


# ---------------------------------------------------------------------------------------- decisions


@pytest.mark.parametrize(
    ("props", "field", "reason"),
    [
        ({"followup_agreed_interval_days": "1000000000"}, "followup_agreed_interval_days", "out_of_range"),
        ({"followup_agreed_interval_days": "-5"}, "followup_agreed_interval_days", "out_of_range"),
        ({"followup_agreed_interval_days": "0"}, "followup_agreed_interval_days", "out_of_range"),
        ({"followup_agreed_interval_days": "NaN"}, "followup_agreed_interval_days", "unreadable"),
        ({"followup_agreed_interval_days": "two weeks"}, "followup_agreed_interval_days", "unreadable"),
        ({"amount": HUGE}, "amount", "out_of_range"),
        ({"amount": "1e400"}, "amount", "out_of_range"),
        ({"amount": "-inf"}, "amount", "out_of_range"),
        ({"followup_qualification_score": "nan"}, "followup_qualification_score", "unreadable"),
        ({"closedate": "9999-12-31"}, "closedate", "out_of_range"),
        ({"closedate": "253402300799000"}, "closedate", "out_of_range"),
        ({"closedate": "9" * 40}, "closedate", "out_of_range"),
        ({"followup_next_step_date": "31.12.2026"}, "followup_next_step_date", "unreadable"),
        ({"followup_state_since": "1600-01-01T00:00:00Z"}, "followup_state_since", "out_of_range"),
        ({"hs_next_step": ["a", "list"]}, "hs_next_step", "wrong_type"),
        ({"createdate": "soon"}, "createdate", "unreadable"),
    ],
)
def test_hubspot_out_of_bounds_values_reject_the_deal_naming_the_property(
    props: dict[str, Any], field: str, reason: str
) -> None:
    """A value out of bounds or unreadable is a rejection with the property and the reason, not "missing"."""
    with pytest.raises(SkipRecord) as caught:
        _hubspot(**props)
    assert (caught.value.record_id, caught.value.field, caught.value.reason) == ("512", field, reason)
    assert field in str(caught.value)


def test_hubspot_values_in_bounds_still_map() -> None:
    """The edges of the bounds are accepted: a one-day and a ten-year interval, a fractional one rounds."""
    assert _hubspot(followup_agreed_interval_days="1").agreement.interval_days == 1
    assert _hubspot(followup_agreed_interval_days="3650").agreement.interval_days == 3650
    assert _hubspot(followup_agreed_interval_days="13.6").agreement.interval_days == 14
    assert _hubspot(followup_agreed_interval_days="").agreement.interval_days is None
    assert _hubspot(amount="-250").amount == -250.0
    assert _hubspot(closedate="4000-12-31").close_date == date(4000, 12, 31)


def test_hubspot_engagement_with_a_bad_timestamp_is_a_bad_value_naming_it() -> None:
    """An activity or one of our tasks with a timestamp out of bounds names itself in the error."""
    call = {"id": "9", "properties": {"hs_timestamp": "99999999999999999"}}
    with pytest.raises(BadValue) as caught:
        activity_from_hubspot("calls", call)
    assert (caught.value.field, caught.value.reason) == ("calls:9.hs_timestamp", "out_of_range")
    ours = {
        "id": "7",
        "properties": {
            "hs_task_body": "x\ncrm-followup key: cf-0123456789abcdef0123 rule: a",
            "hs_timestamp": "x",
        },
    }
    with pytest.raises(BadValue, match=r"tasks:7\.hs_timestamp"):
        auto_task_from_hubspot(ours)


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"Followup_Agreed_Interval_Days__c": 1e9}, "Followup_Agreed_Interval_Days__c", "out_of_range"),
        ({"Followup_Agreed_Interval_Days__c": -5}, "Followup_Agreed_Interval_Days__c", "out_of_range"),
        ({"Followup_Agreed_Interval_Days__c": "NaN"}, "Followup_Agreed_Interval_Days__c", "unreadable"),
        ({"Amount": 10**400}, "Amount", "out_of_range"),
        ({"Amount": {"nested": 1}}, "Amount", "wrong_type"),
        ({"CloseDate": "4001-01-01"}, "CloseDate", "out_of_range"),
        ({"CloseDate": "tomorrow"}, "CloseDate", "unreadable"),
        (
            {"Followup_State_Since__c": "1699-12-31T23:00:00.000+0000"},
            "Followup_State_Since__c",
            "out_of_range",
        ),
        ({"NextStep": 12.5}, None, None),  # a number where text belongs reads as its text
    ],
)
def test_salesforce_out_of_bounds_values_reject_the_opportunity_naming_the_field(
    fields: dict[str, Any], field: str | None, reason: str | None
) -> None:
    """The same bounds on Salesforce: the opportunity is rejected with the field and the reason."""
    if field is None:
        assert _salesforce(opportunity(**fields)).next_step.what == "12.5"
        return
    with pytest.raises(SkipRecord) as caught:
        _salesforce(opportunity(**fields))
    assert (caught.value.object_type, caught.value.field, caught.value.reason) == (
        "Opportunity",
        field,
        reason,
    )


def test_salesforce_activity_with_a_bad_date_rejects_its_opportunity() -> None:
    """A Task, Event or EmailMessage with an unreadable date rejects the deal, naming the record."""
    with pytest.raises(SkipRecord) as caught:
        _salesforce(opportunity(tasks=[task("00T000000000001AAA", CompletedDateTime="yesterday-ish")]))
    assert caught.value.field == "Task:00T000000000001AAA.CompletedDateTime"
    assert caught.value.reason == "unreadable"
    with pytest.raises(SkipRecord, match="EmailMessage"):
        _salesforce(opportunity(), [email("02s000000000001AAA", MessageDate="9999-01-01T00:00:00.000+0000")])
    with pytest.raises(SkipRecord, match="Event"):
        _salesforce(opportunity(events=[event("00U000000000001AAA", "12/03/2026 10:00")]))


# ------------------------------------------------------------------------------------------ Hypothesis

# Everything a CRM (or a broken proxy in front of it) could put into a property.
odd_values = st.one_of(
    st.none(),
    st.just(""),
    st.sampled_from(
        [
            "NaN",
            "nan",
            "inf",
            "-Infinity",
            "1e400",
            HUGE,
            "-5",
            "0",
            "1000000000",
            "9999-12-31",
            "0001-01-01",
            "253402300799999",
            "-62135596800001",
            "99999999999999999999999",
            "2026-02-30",
            "2026-03-10T25:00:00Z",
            "true",
            "call",
            "\u202e\u0000\ufeff",
        ]
    ),
    st.text(max_size=50),
    st.text(min_size=2000, max_size=5000),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**400),
    st.floats(),
    st.booleans(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.dates().map(date.isoformat),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
)

HUBSPOT_PROPERTIES = sorted(
    {*hubspot_deal()["properties"], *DEFAULT_DEAL_PROPERTIES.values(), "deal_currency_code"}
)
SALESFORCE_FIELDS = sorted(
    k for k in opportunity() if k not in ("attributes", "Id", "OpportunityContactRoles", "Tasks", "Events")
)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _outcome(mapper: Callable[[], T]) -> T | SkipRecord | BadValue:
    """What a mapping gave: its record, or the rejection it raised (any other exception fails the test)."""
    try:
        return mapper()
    except (SkipRecord, BadValue) as rejected:
        return rejected


def _plans(deal: Deal) -> None:
    plan(POLICY, [deal], NOW, {OWNER_ID: Owner(OWNER_ID, time_zone="America/New_York")})


@FAST
@given(st.dictionaries(st.sampled_from(HUBSPOT_PROPERTIES), odd_values, min_size=1, max_size=6))
def test_hubspot_mapping_gives_a_deal_or_a_rejection_and_the_deal_plans(odd: dict[str, Any]) -> None:
    """Any property values: a Deal the engine can plan, or SkipRecord with the deal id and a reason."""
    outcome = _outcome(lambda: _hubspot(**odd))
    if isinstance(outcome, SkipRecord):
        assert (outcome.record_id, bool(outcome.reason)) == ("512", True)
    else:
        assert isinstance(outcome, Deal), outcome  # a BadValue must have become a SkipRecord
        _plans(outcome)


@FAST
@given(
    st.sampled_from(["calls", "emails", "meetings", "notes", "tasks"]),
    st.dictionaries(
        st.sampled_from(
            [
                "hs_timestamp",
                "hs_meeting_start_time",
                "hs_task_completion_date",
                "hs_task_status",
                "hs_task_body",
                "hs_call_direction",
                "hs_email_direction",
                "hs_meeting_outcome",
                "hs_createdate",
                "hs_task_type",
            ]
        ),
        odd_values,
        max_size=6,
    ),
)
def test_hubspot_engagement_mapping_gives_a_record_or_a_bad_value(
    object_type: str, props: dict[str, Any]
) -> None:
    """Any engagement property values: an Activity/AutoTask (or None), or BadValue naming the field."""
    record = {"id": "3", "properties": props}
    for mapper in (
        lambda: activity_from_hubspot(object_type, record),
        lambda: auto_task_from_hubspot(record),
    ):
        outcome = _outcome(mapper)
        if isinstance(outcome, BadValue):
            assert outcome.field.startswith((f"{object_type}:3.", "tasks:3."))
            assert outcome.reason in ("out_of_range", "unreadable", "wrong_type")


@FAST
@given(
    st.dictionaries(st.sampled_from(SALESFORCE_FIELDS), odd_values, min_size=1, max_size=6),
    st.dictionaries(
        st.sampled_from(
            ["CompletedDateTime", "CreatedDate", "ActivityDate", "IsClosed", "CallType", "Subject"]
        ),
        odd_values,
        max_size=3,
    ),
)
def test_salesforce_mapping_gives_a_deal_or_a_rejection_and_the_deal_plans(
    odd: dict[str, Any], task_fields: dict[str, Any]
) -> None:
    """Any values in the opportunity and one of its Tasks: a Deal the engine can plan, or SkipRecord."""
    record = opportunity(tasks=[task("00T000000000009AAA", **task_fields)], **odd)
    outcome = _outcome(lambda: _salesforce(record))
    if isinstance(outcome, SkipRecord):
        assert (outcome.record_id, bool(outcome.reason)) == (record["Id"], True)
    else:
        assert isinstance(outcome, Deal), outcome  # a BadValue must have become a SkipRecord
        _plans(outcome)
