"""Which CRM tasks are somebody's follow-up tasks (``Deal.rep_tasks``), on both CRMs, as tables.

HubSpot: an open task (any status but COMPLETED) of type CALL, EMAIL or TODO (no type: TODO) without our
key line. Salesforce: an open Task of subtype Task, Call or Email (LinkedIn, list e-mails and cadence steps
are not follow-ups somebody planned) without our key. Both keep the task's owner, type and due date.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.hubspot.mapping import rep_task_from_hubspot
from connectors.salesforce.activities import rep_task_from_task
from policies.model import TaskType

KEY_LINE = "crm-followup key: cf-0123456789abcdef0123 rule: stop"


def hubspot_task(**props: str) -> dict[str, Any]:
    base = {
        "hs_task_status": "NOT_STARTED",
        "hs_task_type": "CALL",
        "hs_task_subject": "Call back",
        "hs_task_body": "as promised",
        "hubspot_owner_id": "77",
        "hs_timestamp": "2026-03-05T09:00:00.000Z",
        "hs_lastmodifieddate": "2026-03-02T09:00:00.000Z",
    }
    return {"id": "301", "properties": {**base, **props}}


@pytest.mark.parametrize(
    ("props", "task_type"),
    [
        ({}, TaskType.CALL),
        ({"hs_task_type": "EMAIL"}, TaskType.EMAIL),
        ({"hs_task_type": "TODO", "hs_task_status": "IN_PROGRESS"}, TaskType.TODO),
        ({"hs_task_type": ""}, TaskType.TODO),
        ({"hs_task_status": "WAITING"}, TaskType.CALL),
        ({"hs_task_status": "COMPLETED"}, None),
        ({"hs_task_type": "LINKED_IN_MESSAGE"}, None),
        ({"hs_task_body": f"ours\n\n{KEY_LINE}"}, None),
    ],
)
def test_hubspot_rep_tasks(props: dict[str, str], task_type: TaskType | None) -> None:
    found = rep_task_from_hubspot(hubspot_task(**props))
    if task_type is None:
        assert found is None
        return
    assert found is not None
    assert (found.id, found.owner_id, found.task_type, found.is_open) == ("301", "77", task_type, True)
    assert found.due_at == datetime(2026, 3, 5, 9, 0, tzinfo=UTC)
    assert found.modified_at == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def salesforce_task(**fields: Any) -> dict[str, Any]:
    base = {
        "Id": "00T000000000001AAA",
        "IsClosed": False,
        "TaskSubtype": "Task",
        "Type": "Call",
        "Subject": "Call back",
        "OwnerId": "0055g0000000001AAA",
        "ActivityDate": "2026-03-05",
        "Followup_Key__c": None,
    }
    return {**base, **fields}


@pytest.mark.parametrize(
    ("fields", "task_type"),
    [
        ({}, TaskType.CALL),
        ({"TaskSubtype": "Email", "Type": "Email"}, TaskType.EMAIL),
        ({"TaskSubtype": "Call", "Type": None}, TaskType.CALL),
        ({"Type": "Other"}, TaskType.TODO),
        ({"Type": "Meeting"}, TaskType.MEETING),  # reported; the engine never closes meetings
        ({"IsClosed": True}, None),
        ({"TaskSubtype": "ListEmail"}, None),
        ({"TaskSubtype": "Cadence"}, None),
        ({"TaskSubtype": "LinkedIn"}, None),
        ({"Followup_Key__c": "cf-0123456789abcdef0123"}, None),
    ],
)
def test_salesforce_rep_tasks(fields: dict[str, Any], task_type: TaskType | None) -> None:
    found = rep_task_from_task(
        salesforce_task(**fields), key_field="Followup_Key__c", owner_time_zone="UTC", default_zone="UTC"
    )
    if task_type is None:
        assert found is None
        return
    assert found is not None
    assert (found.owner_id, found.task_type, found.is_open) == ("0055g0000000001AAA", task_type, True)
    assert found.due_at == datetime(2026, 3, 5, 23, 59, 59, tzinfo=UTC)  # Salesforce due: the whole day
