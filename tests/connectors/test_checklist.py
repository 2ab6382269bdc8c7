"""A combined task's checklist in the CRM: the state line reads back from plain text and HTML, the HubSpot
body is readable HTML with the key line last, the Salesforce description never loses its state line."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from connectors.checklist import html_checklist, items_line, parse_items
from connectors.hubspot.mapping import auto_task_from_hubspot, parse_task_key
from connectors.hubspot.payloads import task_close_properties, task_create_input, task_update_properties
from connectors.salesforce.activities import auto_task_from_task
from connectors.salesforce.payloads import (
    DESCRIPTION_MAX,
    PayloadConfig,
    close_task_record,
    create_task_record,
    update_task_record,
)
from policies.model import (
    ChecklistItem,
    CloseReason,
    CloseTask,
    CreateTask,
    DealField,
    Evidence,
    Explanation,
    TaskItem,
    TaskType,
    UpdateTask,
)

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
FOLLOW_UP = TaskItem("agreed_interval", "cf-0123456789abcdef0123", NOW, NOW + timedelta(minutes=30))
NEXT_STEP = TaskItem("next_step", "cf-aaaaaaaaaaaaaaaaaaaa", NOW, NOW, CloseReason.SETTLED, date(2026, 3, 5))
CHECKLIST = (
    ChecklistItem(
        FOLLOW_UP,
        "Follow up with Ann & Bob <Sales>",
        "Call them.",
        "follow-up due 2026-03-04",
        (Evidence("anchor", '2026-02-25 ("call")'),),
    ),
    ChecklistItem(NEXT_STEP, "Agree the next step"),
)
BODY = "One conversation with Ann: 1 of 2 open."  # a combined task's body: the heading of its checklist
CONFIG = PayloadConfig(
    opportunity_fields={f: f.value for f in DealField},
    task_key_field="Followup_Key__c",
    task_rule_field="Followup_Rule__c",
    open_task_status="Not Started",
    closed_task_status="Completed",
    default_time_zone="UTC",
)


def _create(body: str = BODY) -> CreateTask:
    return CreateTask(
        key=FOLLOW_UP.key,
        deal_id="d1",
        rule_id="conversation",
        explanation=Explanation("one conversation"),
        owner_id="o1",
        subject="Follow up with Ann + next step",
        body=body,
        due_at=NOW,
        task_type=TaskType.CALL,
        items=CHECKLIST,
    )


moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


@given(
    st.lists(
        st.builds(
            TaskItem,
            st.sampled_from(["agreed_interval", "next_step", "decision_maker", "nurture"]),
            st.text("0123456789abcdef", min_size=20, max_size=20).map(lambda h: f"cf-{h}"),
            moments,
            moments,
        ),
        min_size=1,
        max_size=4,
    ),
    st.lists(st.none() | st.sampled_from(CloseReason), min_size=4, max_size=4),
)
def test_the_state_line_reads_back_what_was_written(
    items: list[TaskItem], closed: list[CloseReason | None]
) -> None:
    """Every item, open or closed with its day, round-trips through the line, bare or inside HTML."""
    items = [
        TaskItem(i.rule_id, i.key, i.added_at, i.due_at, c, date(2026, 3, 5) if c else None)
        for i, c in zip(items, closed, strict=False)
    ]
    line = items_line(items)
    assert parse_items(line) == tuple(items)
    assert parse_items(f"<p>text</p><p>{line}</p><p>crm-followup key: {items[0].key} rule: x</p>") == tuple(
        items
    )


def test_a_body_without_the_line_or_with_a_broken_item_keeps_what_it_can() -> None:
    """No line: a task of one rule. An item whose moment does not parse is left out, the rest kept."""
    assert parse_items("Call Ann.\n\ncrm-followup key: cf-0123456789abcdef0123 rule: agreed_interval") == ()
    assert parse_items(None) == ()
    good = items_line([FOLLOW_UP])
    broken = good + "; next_step cf-bbbbbbbbbbbbbbbbbbbb yesterday 2026-03-04T10:00:00Z open"
    assert parse_items(broken) == (FOLLOW_UP,)


def test_hubspot_body_is_html_with_the_checklist_the_state_and_the_key_last() -> None:
    """The rep reads a list with boxes; names are escaped; the state line and key line come back."""
    props = task_create_input(_create())["properties"]
    body = props["hs_task_body"]
    assert body.startswith("<p>One conversation with Ann: 1 of 2 open.</p><ul>")
    assert "&#9744; <strong>Follow up with Ann &amp; Bob &lt;Sales&gt;</strong>" in body
    assert "<li>anchor: 2026-02-25 (&quot;call&quot;)</li>" in body
    assert "&#9745; <s>Agree the next step</s> (done 2026-03-05)" in body
    assert body.endswith(f"<p>crm-followup key: {FOLLOW_UP.key} rule: conversation</p>")
    assert parse_task_key(body) == (FOLLOW_UP.key, "conversation")
    assert parse_items(body) == (FOLLOW_UP, NEXT_STEP)
    task = auto_task_from_hubspot(
        {
            "id": "7",
            "properties": {"hs_task_body": body, "hs_timestamp": NOW.isoformat(), "hs_task_status": "X"},
        }
    )
    assert task is not None
    assert task.items == (FOLLOW_UP, NEXT_STEP)


def test_hubspot_update_and_close_rewrite_the_checklist() -> None:
    """An update writes the new checklist and the new task type; a close adds its note above the state."""
    update = UpdateTask(
        key="u",
        deal_id="d1",
        rule_id="conversation",
        explanation=Explanation("checklist updated"),
        task_id="7",
        task_key=FOLLOW_UP.key,
        subject="Follow up with Ann",
        body=BODY,
        task_type=TaskType.EMAIL,
        items=CHECKLIST,
    )
    props = task_update_properties(update, "<p>old</p>")
    assert props["hs_task_type"] == "EMAIL"
    assert parse_items(props["hs_task_body"]) == (FOLLOW_UP, NEXT_STEP)
    closed = task_close_properties(
        CloseReason.SETTLED, props["hs_task_body"], FOLLOW_UP.key, "conversation", CHECKLIST, BODY
    )
    assert closed["hs_task_status"] == "COMPLETED"
    assert (
        "<p>Closed by crm-followup: what this task asked for is now recorded in HubSpot.</p>"
        in (closed["hs_task_body"])
    )
    assert closed["hs_task_body"].endswith("rule: conversation</p>")
    assert parse_items(closed["hs_task_body"]) == (FOLLOW_UP, NEXT_STEP)


def test_salesforce_description_is_the_plain_checklist_and_the_state_line_survives_any_length() -> None:
    """The Description is the engine's text plus the state line; a text too long is cut, never the line."""
    record = create_task_record(_create(), "UTC", CONFIG)
    assert record["Description"] == (
        "One conversation with Ann: 1 of 2 open.\n\n"
        "[ ] Follow up with Ann & Bob <Sales>\n"
        "    Call them.\n"
        "    Why: follow-up due 2026-03-04\n"
        '    - anchor: 2026-02-25 ("call")\n'
        "[x] Agree the next step (done 2026-03-05)\n\n" + items_line([FOLLOW_UP, NEXT_STEP])
    )
    assert record["Followup_Rule__c"] == "conversation"
    long = create_task_record(_create(BODY + "x" * 40_000), "UTC", CONFIG)["Description"]
    assert len(long) == DESCRIPTION_MAX
    assert parse_items(long) == (FOLLOW_UP, NEXT_STEP)
    row = {
        "Id": "00T1",
        "Followup_Key__c": FOLLOW_UP.key,
        "CreatedDate": NOW.isoformat(),
        "Description": long,
    }
    task = auto_task_from_task(
        row,
        key_field="Followup_Key__c",
        rule_field="Followup_Rule__c",
        owner_time_zone=None,
        default_zone="UTC",
    )
    assert task is not None
    assert task.items == (FOLLOW_UP, NEXT_STEP)


def test_salesforce_update_and_close_write_the_checklist() -> None:
    """An update writes Description, rule and Type; a close writes the final checklist with its note."""
    update = UpdateTask(
        key="u",
        deal_id="d1",
        rule_id="conversation",
        explanation=Explanation("checklist updated"),
        task_id="00T1",
        task_key=FOLLOW_UP.key,
        body=BODY,
        task_type=TaskType.MEETING,
        items=CHECKLIST,
    )
    record = update_task_record(update, "UTC", CONFIG)
    assert (record["Type"], record["Followup_Rule__c"]) == ("Meeting", "conversation")
    assert parse_items(record["Description"]) == (FOLLOW_UP, NEXT_STEP)
    close = CloseTask(
        key="c",
        deal_id="d1",
        rule_id="conversation",
        explanation=Explanation("nothing left open"),
        task_id="00T1",
        task_key=FOLLOW_UP.key,
        reason=CloseReason.SUPERSEDED,
        items=CHECKLIST,
        body=BODY,
    )
    closed = close_task_record("00T1", CONFIG, close)
    assert closed["Status"] == "Completed"
    assert "Closed by crm-followup: a newer signal or task replaced it." in closed["Description"]
    assert parse_items(closed["Description"]) == (FOLLOW_UP, NEXT_STEP)
    plain = close_task_record("00T1", CONFIG)
    assert "Description" not in plain  # a task of one rule: only its status changes


def test_html_checklist_escapes_every_text() -> None:
    html = html_checklist(CHECKLIST, "<b>heading</b>")
    assert html.startswith("<p>&lt;b&gt;heading&lt;/b&gt;</p>")
    assert "<Sales>" not in html
