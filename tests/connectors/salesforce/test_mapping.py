"""Unit tests for the pure record -> domain model mapping (mapping.py, activities.py, values.py)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime

import pytest

from connectors.errors import SkipRecord
from connectors.salesforce.activities import (
    activity_from_event,
    activity_from_task,
    call_outcome,
    contact_touches,
    due_at_of,
)
from connectors.salesforce.mapping import (
    MappingConfig,
    add_contact_touches,
    deal_from_records,
    owner_from_user,
    pipeline_from_stages,
)
from connectors.salesforce.options import DEFAULT_OPPORTUNITY_FIELDS, DEFAULT_ROLES
from connectors.salesforce.values import parse_datetime
from policies.model import (
    Activity,
    ActivityKind,
    Channel,
    ContactRole,
    Direction,
    FollowupState,
    Outcome,
    Owner,
    Readiness,
    TaskType,
)
from tests.connectors.salesforce.records import (
    CONTACT_A,
    CONTACT_B,
    OWNER_ID,
    email,
    event,
    opportunity,
    role,
    task,
)

NOW = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)
STAGES = [
    {
        "ApiName": "Prospecting",
        "MasterLabel": "Prospecting",
        "IsActive": True,
        "IsClosed": False,
        "IsWon": False,
        "DefaultProbability": 10.0,
        "SortOrder": 1,
    },
    {
        "ApiName": "Negotiation/Review",
        "MasterLabel": "Negotiation/Review",
        "IsActive": True,
        "IsClosed": False,
        "IsWon": False,
        "DefaultProbability": 90.0,
        "SortOrder": 8,
    },
    {
        "ApiName": "Closed Won",
        "MasterLabel": "Closed Won",
        "IsActive": True,
        "IsClosed": True,
        "IsWon": True,
        "DefaultProbability": 100.0,
        "SortOrder": 9,
    },
    {
        "ApiName": "Old",
        "MasterLabel": "Old",
        "IsActive": False,
        "IsClosed": False,
        "IsWon": False,
        "DefaultProbability": 0,
        "SortOrder": 10,
    },
]
PIPELINE = pipeline_from_stages(STAGES, pipeline_id="default", label="Opportunities")


def config(
    stage_ids: Mapping[str, str] | None = None, extra_deal_fields: tuple[str, ...] = ()
) -> MappingConfig:
    return MappingConfig(
        pipeline_id="default",
        opportunity_fields=DEFAULT_OPPORTUNITY_FIELDS,
        contact_roles=DEFAULT_ROLES,
        stage_ids=stage_ids or {},
        extra_deal_fields=extra_deal_fields,
        owners={OWNER_ID: Owner(id=OWNER_ID, time_zone="America/New_York")},
    )


def test_salesforce_datetimes_with_offsets_without_colon_parse_to_utc() -> None:
    """Salesforce's ``+0000`` and ``+0200`` offsets parse into aware UTC datetimes."""
    assert parse_datetime("2013-05-20T20:49:32.000+0200") == datetime(2013, 5, 20, 18, 49, 32, tzinfo=UTC)


def test_pipeline_keeps_active_stages_in_sort_order_with_stage_name_ids() -> None:
    """OpportunityStage rows become one pipeline; inactive stages are left out; probability is 0..1."""
    assert [s.id for s in PIPELINE.stages] == ["Prospecting", "Negotiation/Review", "Closed Won"]
    won = PIPELINE.stage("Closed Won")
    assert won is not None
    assert won.is_closed
    assert won.is_won
    assert won.probability == 1.0


def test_owner_reads_time_zone_sid_key() -> None:
    """A User's TimeZoneSidKey becomes the owner's IANA time zone."""
    owner = owner_from_user(
        {
            "Id": OWNER_ID,
            "Name": "Rep",
            "Email": "r@x.io",
            "TimeZoneSidKey": "Europe/Berlin",
            "IsActive": False,
        }
    )
    assert (owner.time_zone, owner.active) == ("Europe/Berlin", False)


def test_full_aggregate_maps_fields_roles_and_activities() -> None:
    """An opportunity with child sets and e-mails becomes a complete Deal."""
    record = opportunity(
        roles=[
            role(CONTACT_A, "Decision Maker", primary=True),
            role(CONTACT_A, "Economic Buyer", primary=False),
            role(CONTACT_B, "Gatekeeper", name="Bob"),
        ],
        tasks=[
            task(
                "00T000000000001AAA",
                TaskSubtype="Call",
                CallType="Outbound",
                CallDisposition="Left Voicemail",
            ),
            task("00T000000000002AAA", IsClosed=False, Status="Not Started"),
        ],
        events=[event("00U000000000001AAA", "2026-03-01T15:00:00.000+0000")],
    )
    deal = deal_from_records(
        record, [email("02s000000000001AAA", Incoming=True)], config=config(), pipeline=PIPELINE, now=NOW
    )
    assert deal.stage == PIPELINE.stage("Negotiation/Review")
    assert (deal.agreement.interval_days, deal.agreement.channel) == (14, Channel.CALL)
    assert (deal.readiness, deal.followup_state) == (Readiness.NOT_NOW, FollowupState.ACTIVE)
    assert deal.next_step.when == date(2026, 3, 10)
    assert deal.next_step.what == "Send the proposal"
    assert deal.qualification_score == 72.5
    contacts = {c.id: c for c in deal.contacts}
    assert contacts[CONTACT_A].roles == {ContactRole.DECISION_MAKER, ContactRole.ECONOMIC_BUYER}
    assert contacts[CONTACT_A].is_primary
    assert deal.primary_contact == contacts[CONTACT_A]
    assert contacts[CONTACT_B].roles == {ContactRole.GATEKEEPER}
    kinds = [(a.kind, a.outcome, a.direction) for a in deal.activities]
    assert kinds == [
        (ActivityKind.MEETING, Outcome.COMPLETED, Direction.OUTBOUND),
        (ActivityKind.CALL, Outcome.VOICEMAIL, Direction.OUTBOUND),
        (ActivityKind.EMAIL, Outcome.REPLIED, Direction.INBOUND),
    ]
    assert deal.auto_tasks == ()


def test_task_mirroring_an_email_message_is_not_counted_twice() -> None:
    """With Enhanced Email, the Task an EmailMessage points at (ActivityId) is dropped."""
    record = opportunity(tasks=[task("00T000000000009AAA", TaskSubtype="Email", Type="Email")])
    mail = email("02s000000000009AAA", ActivityId="00T000000000009AAA", Incoming=False)
    deal = deal_from_records(record, [mail], config=config(), pipeline=PIPELINE, now=NOW)
    assert [a.id for a in deal.activities] == ["02s000000000009AAA"]


def test_our_task_becomes_auto_task_due_at_end_of_owner_day() -> None:
    """A Task with our key is an AutoTask; its due date ends at midnight in the owner's time zone."""
    ours = task(
        "00T000000000003AAA",
        IsClosed=False,
        Status="Not Started",
        Type="Call",
        ActivityDate="2026-03-06",
        Followup_Key__c="cf-0123456789abcdef0123",
        Followup_Rule__c="call-back",
    )
    deal = deal_from_records(opportunity(tasks=[ours]), [], config=config(), pipeline=PIPELINE, now=NOW)
    (auto,) = deal.auto_tasks
    assert (auto.key, auto.rule_id, auto.is_open, auto.task_type) == (
        "cf-0123456789abcdef0123",
        "call-back",
        True,
        TaskType.CALL,
    )
    assert auto.due_at == datetime(2026, 3, 7, 4, 59, 59, tzinfo=UTC)  # 23:59:59 in New York (EST)


def test_unknown_stage_falls_back_to_record_flags() -> None:
    """A StageName missing from the directory still yields a stage with the record's IsClosed/IsWon."""
    record = opportunity(StageName="Closed Lost (legacy)", IsClosed=True, IsWon=False)
    deal = deal_from_records(record, [], config=config(), pipeline=PIPELINE, now=NOW)
    assert (deal.stage.id, deal.is_closed, deal.stage.is_won) == ("Closed Lost (legacy)", True, False)


def test_extra_fields_and_bad_enum_values() -> None:
    """Extra fields come by CRM name; an unknown readiness value reads as unknown."""
    record = opportunity(Budget__c=5000, Followup_Readiness__c="Maybe later")
    deal = deal_from_records(
        record, [], config=config(extra_deal_fields=("Budget__c",)), pipeline=PIPELINE, now=NOW
    )
    assert deal.fields == {"Budget__c": 5000}
    assert deal.readiness is Readiness.UNKNOWN


def test_missing_timestamps_are_rejected() -> None:
    """A record without CreatedDate cannot be mapped (the pull reports it as rejected)."""
    with pytest.raises(SkipRecord, match="CreatedDate") as caught:
        deal_from_records(opportunity(CreatedDate=None), [], config=config(), pipeline=PIPELINE, now=NOW)
    assert (caught.value.field, caught.value.reason) == ("CreatedDate", "missing_date")


@pytest.mark.parametrize(
    ("disposition", "outcome"),
    [
        ("Connected", Outcome.CONNECTED),
        ("No Answer", Outcome.NO_ANSWER),
        ("Left Voicemail", Outcome.VOICEMAIL),
        ("Busy", Outcome.BUSY),
        ("Wrong Number", Outcome.WRONG_NUMBER),
        ("spoke with assistant", Outcome.CONNECTED),
        (None, Outcome.UNKNOWN),
    ],
)
def test_call_dispositions(disposition: str | None, outcome: Outcome) -> None:
    """Free-text CallDisposition values reduce to outcomes."""
    assert call_outcome(disposition) is outcome


def test_inbound_call_and_open_task() -> None:
    """CallType Inbound is an inbound call; an open Task is no touch at all."""
    inbound = activity_from_task(
        task("00T1", TaskSubtype="Call", CallType="Inbound"), key_field="Followup_Key__c"
    )
    assert inbound is not None
    assert inbound.direction is Direction.INBOUND
    assert activity_from_task(task("00T2", IsClosed=False), key_field="Followup_Key__c") is None


@pytest.mark.parametrize(
    ("start", "fields", "outcome"),
    [
        ("2026-03-09T10:00:00.000+0000", {}, Outcome.SCHEDULED),
        ("2026-03-01T10:00:00.000+0000", {}, Outcome.COMPLETED),
        ("2026-03-01T10:00:00.000+0000", {"Subject": "Canceled: Demo", "ShowAs": "Free"}, Outcome.CANCELLED),
        ("2026-03-01T10:00:00.000+0000", {"Description": "No-show: waited 20 min"}, Outcome.NO_SHOW),
    ],
)
def test_event_outcomes(start: str, fields: dict[str, str], outcome: Outcome) -> None:
    """Events are scheduled or completed by time, cancelled or no-show by their texts."""
    meeting = activity_from_event(event("00U1", start, **fields), now=NOW)
    assert meeting is not None
    assert meeting.outcome is outcome
    assert meeting.contact_ids == (CONTACT_B,)


def test_due_at_with_unknown_zone_uses_default() -> None:
    """An unknown TimeZoneSidKey falls back to the default zone."""
    assert due_at_of(date(2026, 3, 6), "Mars/Olympus", "UTC") == datetime(2026, 3, 6, 23, 59, 59, tzinfo=UTC)


def test_contact_touches_count_for_every_deal_of_the_contact() -> None:
    """A touch logged on a contact for another opportunity joins this deal's history once."""
    deal = deal_from_records(
        opportunity(roles=[role(CONTACT_A, "Decision Maker")]),
        [],
        config=config(),
        pipeline=PIPELINE,
        now=NOW,
    )
    call = activity_from_task(task("00T7", TaskSubtype="Call", CallDisposition="Connected"), key_field="K")
    assert call is not None
    index = {CONTACT_A: [("006OTHER", call), ("006OTHER", call)], CONTACT_B: [("006OTHER", call)]}
    assert [a.id for a in add_contact_touches(deal, index).activities] == ["00T7"]
    own = {CONTACT_A: [(deal.id, call)]}
    assert add_contact_touches(deal, own) is deal  # its own touches are already there


def test_email_task_stands_for_its_message_with_the_task_contact() -> None:
    """An Enhanced Email Task becomes the EmailMessage's touch, carrying the Task's contact."""
    rows = [task("00T9", TaskSubtype="Email", WhoId=CONTACT_B)]
    mirrors = {"00T9": email("02s9", Incoming=True, ActivityId="00T9")}
    ((who, _, touch),) = contact_touches(rows, key_field="K", now=NOW, mirrors=mirrors)
    assert isinstance(touch, Activity), touch
    assert (who, touch.id, touch.direction, touch.contact_ids) == (
        CONTACT_B,
        "02s9",
        Direction.INBOUND,
        (CONTACT_B,),
    )


def test_stage_map_gives_stages_the_ids_the_policy_uses() -> None:
    """With ``stage_ids``, a StageName reads as the policy's stage id in the directory and on deals."""
    ids = {"Closed Won": "closedwon", "Negotiation/Review": "negotiation"}
    pipeline = pipeline_from_stages(STAGES, pipeline_id="default", label="Opportunities", stage_ids=ids)
    assert [s.id for s in pipeline.stages] == ["Prospecting", "negotiation", "closedwon"]
    record = opportunity(StageName="Negotiation/Review")
    deal = deal_from_records(record, [], config=config(stage_ids=ids), pipeline=pipeline, now=NOW)
    assert (deal.stage.id, deal.stage.label, deal.stage.probability) == (
        "negotiation",
        "Negotiation/Review",
        0.9,
    )
