"""The pure HubSpot <-> domain mapping functions, on payload dicts shaped like HubSpot's wire format."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from connectors.errors import SkipRecord
from connectors.hubspot.mapping import (
    activity_from_hubspot,
    auto_task_from_hubspot,
    contact_from_hubspot,
    deal_from_hubspot,
    owner_from_hubspot,
    parse_task_key,
    pipeline_from_hubspot,
    roles_from_labels,
    task_view,
)
from connectors.hubspot.options import DEFAULT_DEAL_PROPERTIES, DEFAULT_ROLE_LABELS
from connectors.hubspot.payloads import (
    checklist_body,
    deal_write_properties,
    strip_key_line,
    task_close_properties,
    task_create_input,
    task_update_properties,
)
from connectors.hubspot.values import format_value, hubspot_time_zone, parse_date, parse_datetime
from policies.model import (
    ActivityKind,
    Channel,
    ChecklistItem,
    CloseReason,
    ContactRole,
    CreateTask,
    DealField,
    Direction,
    Evidence,
    Explanation,
    FollowupState,
    Outcome,
    Pipeline,
    Priority,
    Readiness,
    TaskItem,
    TaskType,
    UpdateTask,
)

KEY = "cf-0123456789abcdef0123"

PIPELINE = {
    "id": "default",
    "label": "Sales Pipeline",
    "displayOrder": 0,
    "stages": [
        {
            "id": "closedwon",
            "label": "Closed won",
            "displayOrder": 5,
            "metadata": {"isClosed": "true", "probability": "1.0"},
        },
        {
            "id": "appointmentscheduled",
            "label": "Appointment",
            "displayOrder": 0,
            "metadata": {"isClosed": "false", "probability": "0.2"},
        },
        {
            "id": "closedlost",
            "label": "Closed lost",
            "displayOrder": 6,
            "metadata": {"isClosed": "true", "probability": "0.0"},
        },
        {"id": "old", "label": "Old", "displayOrder": 7, "archived": True, "metadata": {}},
    ],
}


def _pipelines() -> dict[str, Pipeline]:
    p = pipeline_from_hubspot(PIPELINE)
    return {p.id: p}


def _deal(**props: str | None) -> dict[str, Any]:
    base: dict[str, str | None] = {
        "dealname": "Acme renewal",
        "pipeline": "default",
        "dealstage": "appointmentscheduled",
        "hubspot_owner_id": "77",
        "amount": "1200.5",
        "closedate": "2026-12-01T00:00:00.000Z",
        "createdate": "2026-01-05T10:00:00.000Z",
        "hs_lastmodifieddate": "2026-03-01T09:30:00.123Z",
        "hs_next_step": "Send proposal",
        "followup_next_step_date": "2026-03-10",
        "followup_agreed_interval_days": "14",
        "followup_agreed_channel": "call",
        "followup_readiness": "not_now",
        "followup_qualification_score": "72",
        "followup_state": None,
        "hs_date_entered_appointmentscheduled": "2026-02-01T08:00:00.000Z",
    }
    base.update(props)
    return {"id": "512", "properties": base, "createdAt": "2026-01-05T10:00:00.000Z", "archived": False}


def test_parse_datetime_reads_iso_and_millisecond_epochs():
    """Both HubSpot datetime spellings become the same aware UTC instant."""
    iso = parse_datetime("2026-03-01T09:30:00.123Z")
    assert iso == datetime(2026, 3, 1, 9, 30, 0, 123000, tzinfo=UTC)
    assert parse_datetime(str(int(iso.timestamp() * 1000))) == iso
    assert parse_datetime(None) is None
    assert parse_datetime("") is None
    assert parse_datetime("yesterday") is None


def test_parse_date_accepts_iso_dates_midnight_datetimes_and_epochs():
    """Date-only properties come as plain dates whatever the spelling."""
    assert parse_date("2026-03-10") == date(2026, 3, 10)
    assert parse_date("2026-03-10T00:00:00.000Z") == date(2026, 3, 10)
    assert parse_date("1773100800000") == date(2026, 3, 10)


def test_pipeline_stages_take_closed_and_won_from_string_metadata():
    """Stage metadata strings decide is_closed/is_won; archived stages are dropped; displayOrder orders."""
    pipeline = pipeline_from_hubspot(PIPELINE)
    assert [s.id for s in pipeline.stages] == ["appointmentscheduled", "closedwon", "closedlost"]
    won, lost = pipeline.stage("closedwon"), pipeline.stage("closedlost")
    assert won is not None
    assert won.is_closed
    assert won.is_won
    assert lost is not None
    assert lost.is_closed
    assert not lost.is_won
    open_stage = pipeline.stage("appointmentscheduled")
    assert open_stage is not None
    assert not open_stage.is_closed
    assert open_stage.probability == pytest.approx(0.2)


def test_owner_time_zone_comes_only_from_configuration():
    """HubSpot owners have no time zone: None unless the settings map the id or the email."""
    payload = {"id": "77", "email": "ana@example.com", "firstName": "Ana", "lastName": "Silva", "teams": []}
    assert owner_from_hubspot(payload).time_zone is None
    assert owner_from_hubspot(payload, {"77": "Europe/Lisbon"}).time_zone == "Europe/Lisbon"
    assert owner_from_hubspot(payload, {"ana@example.com": "Europe/Lisbon"}).name == "Ana Silva"
    assert owner_from_hubspot({**payload, "archived": True}).active is False


def test_hubspot_time_zone_names_become_iana_names():
    """hs_timezone values like america_slash_new_york map to IANA names; unknown values to None."""
    assert hubspot_time_zone("america_slash_new_york") == "America/New_York"
    assert hubspot_time_zone("europe_slash_berlin") == "Europe/Berlin"
    assert hubspot_time_zone("america_slash_port_of_spain") == "America/Port_of_Spain"
    assert hubspot_time_zone("mars_slash_olympus") is None
    assert hubspot_time_zone(None) is None


def test_roles_from_labels_ignore_case_and_unknown_labels():
    """Association labels map to roles through the configurable table."""
    roles = roles_from_labels(["decision MAKER", None, "Champion", "Board member"], DEFAULT_ROLE_LABELS)
    assert roles == frozenset({ContactRole.DECISION_MAKER, ContactRole.CHAMPION})


def test_contact_carries_roles_time_zone_and_primary_flag():
    """A contact record plus its association labels becomes a Contact."""
    payload = {
        "id": "201",
        "properties": {
            "firstname": "Lea",
            "lastname": "Berg",
            "email": "lea@x.io",
            "hs_timezone": "europe_slash_berlin",
        },
    }
    contact = contact_from_hubspot(
        payload, [None, "Economic buyer", "Primary"], DEFAULT_ROLE_LABELS, "primary"
    )
    assert contact.roles == frozenset({ContactRole.ECONOMIC_BUYER})
    assert contact.time_zone == "Europe/Berlin"
    assert contact.is_primary
    assert contact.name == "Lea Berg"


@pytest.mark.parametrize(
    ("object_type", "props", "kind", "direction", "outcome"),
    [
        (
            "calls",
            {"hs_call_direction": "INBOUND", "hs_call_disposition": "f240bbac-87c9-4f6e-bf70-924b57d47db7"},
            ActivityKind.CALL,
            Direction.INBOUND,
            Outcome.CONNECTED,
        ),
        (
            "calls",
            {"hs_call_direction": "OUTBOUND", "hs_call_disposition": "b2cf5968-551e-4856-9783-52b3da59a7d0"},
            ActivityKind.CALL,
            Direction.OUTBOUND,
            Outcome.VOICEMAIL,
        ),
        ("calls", {"hs_call_status": "NO_ANSWER"}, ActivityKind.CALL, Direction.OUTBOUND, Outcome.NO_ANSWER),
        (
            "emails",
            {"hs_email_direction": "INCOMING_EMAIL", "hs_email_status": "SENT"},
            ActivityKind.EMAIL,
            Direction.INBOUND,
            Outcome.REPLIED,
        ),
        (
            "emails",
            {"hs_email_direction": "EMAIL", "hs_email_status": "BOUNCED"},
            ActivityKind.EMAIL,
            Direction.OUTBOUND,
            Outcome.BOUNCED,
        ),
        (
            "meetings",
            {"hs_meeting_outcome": "NO_SHOW"},
            ActivityKind.MEETING,
            Direction.OUTBOUND,
            Outcome.NO_SHOW,
        ),
        (
            "meetings",
            {"hs_meeting_outcome": "canceled"},
            ActivityKind.MEETING,
            Direction.OUTBOUND,
            Outcome.CANCELLED,
        ),
        ("notes", {}, ActivityKind.NOTE, Direction.OUTBOUND, Outcome.UNKNOWN),
        ("tasks", {"hs_task_status": "COMPLETED"}, ActivityKind.TASK, Direction.OUTBOUND, Outcome.COMPLETED),
    ],
)
def test_engagements_map_to_kind_direction_and_outcome(object_type, props, kind, direction, outcome):
    """Each engagement type's direction and outcome properties reduce to the engine's vocabulary."""
    payload = {"id": "9", "properties": {"hs_timestamp": "2026-03-01T10:00:00.000Z", **props}}
    activity = activity_from_hubspot(object_type, payload, ["202", "201", "201"])
    assert activity is not None
    assert (activity.kind, activity.direction, activity.outcome) == (kind, direction, outcome)
    assert activity.contact_ids == ("201", "202")
    assert activity.id == f"{object_type}:9"


def test_open_tasks_are_not_activities_and_ours_are_marked():
    """Open tasks are to-dos, not touches; a completed task with our key line is created_by_followup."""
    open_task = {
        "id": "1",
        "properties": {"hs_timestamp": "2026-03-01T10:00:00Z", "hs_task_status": "NOT_STARTED"},
    }
    assert activity_from_hubspot("tasks", open_task) is None
    ours = {
        "id": "2",
        "properties": {
            "hs_timestamp": "2026-03-01T10:00:00Z",
            "hs_task_status": "COMPLETED",
            "hs_task_completion_date": "2026-03-02T11:00:00Z",
            "hs_task_body": f"Call back\n\ncrm-followup key: {KEY} rule: call-back",
        },
    }
    activity = activity_from_hubspot("tasks", ours)
    assert activity is not None
    assert activity.created_by_followup
    assert activity.occurred_at == datetime(2026, 3, 2, 11, 0, tzinfo=UTC)


def test_task_key_is_found_in_plain_and_html_bodies():
    """The key line is recognised even when HubSpot stored the body as HTML."""
    assert parse_task_key(f"hello\ncrm-followup key: {KEY} rule: r1") == (KEY, "r1")
    assert parse_task_key(f"<p>hello</p><p>crm-followup key: {KEY} rule: r1</p>") == (KEY, "r1")
    assert parse_task_key("a task somebody else wrote") is None
    assert parse_task_key(None) is None


def test_a_combined_task_reads_as_a_rep_sees_it_one_line_per_item_and_fact():
    """``followup demo``'s view of a checklist body (HTML): each item, its why and each evidence fact on a
    line of its own, the facts indented under their item (the first fact used to stick to the why line)."""
    added = datetime(2026, 3, 2, 9, tzinfo=UTC)
    item = TaskItem("agreed_interval", KEY, added, added)
    checklist = (
        ChecklistItem(
            item,
            "Follow up with Ann",
            "Agree when and how to talk next.",
            "follow-up due 2026-03-05",
            (Evidence("anchor", "2026-03-02 (emails:5)"), Evidence("channel", "call & email")),
        ),
    )
    body = checklist_body(checklist, "One conversation with Ann: 1 of 1 open.", KEY, "conversation")
    view = task_view({"properties": {"hs_task_subject": "Ann", "hs_task_body": body}})
    assert view is not None
    lines = view.body.splitlines()
    assert lines[:6] == [
        "One conversation with Ann: 1 of 1 open.",
        "• ☐ Follow up with Ann",
        "Agree when and how to talk next.",
        "Why: follow-up due 2026-03-05",
        "  • anchor: 2026-03-02 (emails:5)",
        "  • channel: call & email",
    ]
    assert lines[-1] == f"crm-followup key: {KEY} rule: conversation"


def test_auto_task_from_our_task_only():
    """Only tasks with our key line become AutoTasks, with their type, state and due date."""
    ours = {
        "id": "31",
        "createdAt": "2026-02-01T00:00:00Z",
        "properties": {
            "hs_timestamp": "2026-03-05T09:00:00.000Z",
            "hs_task_status": "NOT_STARTED",
            "hs_task_type": "CALL",
            "hs_task_subject": "Call Lea",
            "hubspot_owner_id": "77",
            "hs_task_body": f"x\n\ncrm-followup key: {KEY} rule: call-back",
        },
    }
    task = auto_task_from_hubspot(ours)
    assert task is not None
    assert (task.id, task.key, task.rule_id, task.task_type, task.is_open) == (
        "31",
        KEY,
        "call-back",
        TaskType.CALL,
        True,
    )
    assert task.due_at == datetime(2026, 3, 5, 9, 0, tzinfo=UTC)
    assert auto_task_from_hubspot({"id": "32", "properties": {"hs_task_body": "theirs"}}) is None


def test_deal_maps_every_canonical_field():
    """A deal record with our custom properties fills the Deal aggregate's fields."""
    deal = deal_from_hubspot(_deal(), _pipelines(), DEFAULT_DEAL_PROPERTIES, extra_fields=["amount_band"])
    assert deal.id == "512"
    assert deal.owner_id == "77"
    assert deal.amount == pytest.approx(1200.5)
    assert deal.stage.id == "appointmentscheduled"
    assert not deal.is_closed
    assert deal.modified_at == datetime(2026, 3, 1, 9, 30, 0, 123000, tzinfo=UTC)
    assert deal.close_date == date(2026, 12, 1)
    assert deal.next_step.what == "Send proposal"
    assert deal.next_step.when == date(2026, 3, 10)
    assert deal.agreement.interval_days == 14
    assert deal.agreement.channel is Channel.CALL
    assert deal.readiness is Readiness.NOT_NOW
    assert deal.qualification_score == pytest.approx(72.0)
    assert deal.followup_state is FollowupState.ACTIVE
    assert deal.stage_entered_at == datetime(2026, 2, 1, 8, 0, tzinfo=UTC)
    assert "amount_band" in deal.fields
    assert deal.fields["amount_band"] is None


def test_deal_with_unknown_stage_is_skipped():
    """A deal in a stage the directory does not know is a SkipRecord naming the deal id only."""
    with pytest.raises(SkipRecord) as caught:
        deal_from_hubspot(_deal(dealstage="mystery"), _pipelines(), DEFAULT_DEAL_PROPERTIES)
    assert caught.value.record_id == "512"
    assert "Acme" not in str(caught.value)


def test_deal_extra_fields_are_typed_by_property_type():
    """Extra policy fields are typed from the property definitions (number, bool, date)."""
    deal = deal_from_hubspot(
        _deal(seats="12", vip="true", renewal="2026-05-01"),
        _pipelines(),
        DEFAULT_DEAL_PROPERTIES,
        extra_fields=["seats", "vip", "renewal"],
        field_types={"seats": "number", "vip": "bool", "renewal": "date"},
    )
    assert deal.fields["seats"] == pytest.approx(12.0)
    assert deal.fields["vip"] is True
    assert deal.fields["renewal"] == date(2026, 5, 1)


def _explanation() -> Explanation:
    return Explanation("no reply for 14 days", (Evidence("last inbound", "2026-02-01"),))


def test_create_task_input_carries_key_line_due_type_priority_and_associations():
    """A CreateTask becomes a batch input with the key line last and both associations."""
    action = CreateTask(
        key=KEY,
        deal_id="512",
        rule_id="call-back",
        explanation=_explanation(),
        owner_id="77",
        subject="Call Lea",
        body="Call Lea about the proposal.",
        due_at=datetime(2026, 3, 5, 9, 0, tzinfo=UTC),
        task_type=TaskType.MEETING,
        priority=Priority.HIGH,
        contact_id="201",
    )
    item = task_create_input(action)
    props = item["properties"]
    assert props["hs_timestamp"] == "2026-03-05T09:00:00.000Z"
    assert props["hs_task_type"] == "TODO"
    assert props["hs_task_priority"] == "HIGH"
    assert props["hubspot_owner_id"] == "77"
    assert props["hs_task_status"] == "NOT_STARTED"
    assert props["hs_task_body"].splitlines()[-1] == f"crm-followup key: {KEY} rule: call-back"
    assert "Why: no reply for 14 days" in props["hs_task_body"]
    assert "- last inbound: 2026-02-01" in props["hs_task_body"]
    types = [(a["to"]["id"], a["types"][0]["associationTypeId"]) for a in item["associations"]]
    assert types == [("512", 216), ("201", 204)]
    assert item["objectWriteTraceId"] == KEY


def test_update_and_close_keep_the_key_line_last():
    """Updating or closing a task rewrites its body with the key line still last."""
    update = UpdateTask(
        key="cf-ffffffffffffffffffff",
        deal_id="512",
        rule_id="call-back",
        explanation=_explanation(),
        task_id="31",
        task_key=KEY,
        due_at=datetime(2026, 3, 9, 9, 0, tzinfo=UTC),
        body="Moved: Lea is away.",
    )
    props = task_update_properties(update, "old body")
    assert props["hs_timestamp"] == "2026-03-09T09:00:00.000Z"
    assert props["hs_task_body"].endswith(f"crm-followup key: {KEY} rule: call-back")
    closed = task_close_properties(
        CloseReason.SUPERSEDED, f"Call\n\ncrm-followup key: {KEY} rule: call-back", KEY, "call-back"
    )
    assert closed["hs_task_status"] == "COMPLETED"
    lines = closed["hs_task_body"].splitlines()
    assert lines[-1] == f"crm-followup key: {KEY} rule: call-back"
    assert any(line.startswith("Closed by crm-followup:") for line in lines)
    assert closed["hs_task_body"].count("crm-followup key:") == 1
    assert strip_key_line(closed["hs_task_body"]).endswith("replaced it.")


def test_deal_write_properties_map_canonical_names_and_format_values():
    """SetDealFields values are written under the mapped property names in HubSpot's formats."""
    props = deal_write_properties(
        {
            DealField.FOLLOWUP_STATE.value: FollowupState.NURTURE,
            DealField.NEXT_STEP_DATE.value: date(2026, 3, 10),
            DealField.FOLLOWUP_STATE_SINCE.value: datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
            DealField.AGREED_INTERVAL_DAYS.value: 14.0,
            "custom_flag": True,
            DealField.NEXT_STEP_WHY.value: None,
        },
        DEFAULT_DEAL_PROPERTIES,
    )
    assert props == {
        "followup_state": "nurture",
        "followup_next_step_date": "1773100800000",
        "followup_state_since": "2026-03-01T12:00:00.000Z",
        "followup_agreed_interval_days": "14",
        "custom_flag": "true",
        "followup_next_step_why": "",
    }
    assert format_value(None) == ""
