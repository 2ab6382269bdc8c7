"""Record dicts shaped like Salesforce query results
(https://developer.salesforce.com/docs/platform/api-rest/guide/resources-query.md), for mapping and pull
tests."""

from __future__ import annotations

from typing import Any

OPP_ID = "0065g000000001AAA"
OWNER_ID = "0055g000000001AAA"
CONTACT_A = "0035g000000001AAA"
CONTACT_B = "0035g000000002AAA"


def child_set(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not records:
        return None
    return {"totalSize": len(records), "done": True, "records": records}


def task(task_id: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "attributes": {"type": "Task", "url": f"/services/data/v62.0/sobjects/Task/{task_id}"},
        "Id": task_id,
        "Subject": "Call",
        "Status": "Completed",
        "IsClosed": True,
        "ActivityDate": "2026-03-02",
        "CompletedDateTime": "2026-03-02T10:00:00.000+0000",
        "TaskSubtype": "Task",
        "Type": None,
        "CallType": None,
        "CallDisposition": None,
        "Priority": "Normal",
        "OwnerId": OWNER_ID,
        "WhoId": CONTACT_A,
        "CreatedDate": "2026-03-01T09:00:00.000+0000",
        "SystemModstamp": "2026-03-02T10:00:00.000+0000",
        "Followup_Key__c": None,
        "Followup_Rule__c": None,
    }
    base.update(fields)
    return base


def event(event_id: str, start: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "attributes": {"type": "Event"},
        "Id": event_id,
        "Subject": "Demo",
        "Description": None,
        "ShowAs": "Busy",
        "StartDateTime": start,
        "EndDateTime": start,
        "ActivityDateTime": start,
        "IsAllDayEvent": False,
        "Type": "Meeting",
        "WhoId": CONTACT_B,
        "OwnerId": OWNER_ID,
        "CreatedDate": "2026-02-01T09:00:00.000+0000",
        "SystemModstamp": "2026-02-01T09:00:00.000+0000",
    }
    base.update(fields)
    return base


def email(email_id: str, related_to: str = OPP_ID, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "attributes": {"type": "EmailMessage"},
        "Id": email_id,
        "RelatedToId": related_to,
        "Incoming": False,
        "MessageDate": "2026-03-03T08:00:00.000+0000",
        "Status": "3",
        "IsBounced": False,
        "ActivityId": None,
        "SystemModstamp": "2026-03-03T08:00:00.000+0000",
    }
    base.update(fields)
    return base


def role(
    contact_id: str, role_name: str | None, *, primary: bool = False, name: str = "Ada"
) -> dict[str, Any]:
    return {
        "attributes": {"type": "OpportunityContactRole"},
        "Id": "00K" + contact_id[3:],
        "ContactId": contact_id,
        "Role": role_name,
        "IsPrimary": primary,
        "Contact": {"attributes": {"type": "Contact"}, "Name": name, "Email": f"{name.lower()}@example.com"},
        "SystemModstamp": "2026-01-05T00:00:00.000+0000",
    }


def opportunity(
    opp_id: str = OPP_ID,
    *,
    tasks: list[dict[str, Any]] | None = None,
    events: list[dict[str, Any]] | None = None,
    roles: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    base: dict[str, Any] = {
        "attributes": {"type": "Opportunity", "url": f"/services/data/v62.0/sobjects/Opportunity/{opp_id}"},
        "Id": opp_id,
        "Name": "Acme renewal",
        "StageName": "Negotiation/Review",
        "IsClosed": False,
        "IsWon": False,
        "CloseDate": "2026-04-30",
        "Amount": 12000.0,
        "OwnerId": OWNER_ID,
        "CreatedDate": "2026-01-02T09:00:00.000+0000",
        "LastModifiedDate": "2026-03-04T12:00:00.000+0000",
        "SystemModstamp": "2026-03-04T12:00:01.000+0000",
        "LastStageChangeDate": "2026-02-20T12:00:00.000+0000",
        "IsDeleted": False,
        "NextStep": "Send the proposal",
        "Followup_Next_Step_Why__c": "They asked for it",
        "Followup_Next_Step_Date__c": "2026-03-10",
        "Followup_Agreed_Interval_Days__c": 14.0,
        "Followup_Agreed_Channel__c": "call",
        "Followup_Readiness__c": "not_now",
        "Followup_Qualification_Score__c": 72.5,
        "Followup_State__c": "active",
        "Followup_State_Since__c": None,
        "Followup_Reason__c": None,
        "Followup_Close_Reason__c": None,
        "OpportunityContactRoles": child_set(roles or []),
        "Tasks": child_set(tasks or []),
        "Events": child_set(events or []),
    }
    base.update(fields)
    return base
