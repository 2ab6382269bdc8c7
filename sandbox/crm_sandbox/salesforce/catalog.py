"""The sObjects the sandbox serves, field by field: the data behind ``Schema`` (describe, SOQL, DML).

Field lists follow the Salesforce object reference; picklist values are a new org's defaults (they are
org-specific; sandbox/README.md lists the choices). ``custom_field_defs`` are crm-followup's own fields
(docs/crm-fields.md), absent from a bare org until setup creates them.
"""

from __future__ import annotations

import re
from dataclasses import replace

from crm_sandbox.salesforce.fields import (
    FORECAST_CATEGORIES,
    OPPORTUNITY_ROLES,
    TASK_STATUSES,
    FieldDef,
)

__all__ = ["CHILD_RELATIONSHIPS", "custom_field_defs", "standard_objects", "system_fields"]


def _f(name: str, type_: str, **kw: object) -> FieldDef:
    length = int(kw.pop("length", 255 if type_ in ("string", "picklist", "combobox", "email", "url") else 0))  # type: ignore[call-overload]
    if type_ in ("id", "reference"):
        length = 18
    if type_ == "textarea" and not length:
        length = 32000
    if type_ == "phone" and not length:
        length = 40
    default_label = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name.removesuffix("__c").replace("_", " "))
    label = str(kw.pop("label", default_label))
    fd = FieldDef(name=name, type=type_, label=label, length=length, **kw)  # type: ignore[arg-type]
    if fd.required:
        fd = replace(fd, nillable=False)
    return fd


def _ref(name: str, to: tuple[str, ...] | str, rel: str, **kw: object) -> FieldDef:
    targets = (to,) if isinstance(to, str) else to
    return _f(name, "reference", reference_to=targets, relationship_name=rel, **kw)


def _ro(name: str, type_: str, **kw: object) -> FieldDef:
    return _f(name, type_, createable=False, updateable=False, **kw)


def system_fields() -> list[FieldDef]:
    return [
        _f("Id", "id", nillable=False, createable=False, updateable=False, label="Record ID"),
        _ro("IsDeleted", "boolean", nillable=False, label="Deleted"),
        _ro("CreatedDate", "datetime", nillable=False, label="Created Date"),
        _ref("CreatedById", "User", "CreatedBy", createable=False, updateable=False, nillable=False),
        _ro("LastModifiedDate", "datetime", nillable=False, label="Last Modified Date"),
        _ref(
            "LastModifiedById", "User", "LastModifiedBy", createable=False, updateable=False, nillable=False
        ),
        _ro("SystemModstamp", "datetime", nillable=False, label="System Modstamp"),
    ]


def custom_field_defs() -> dict[str, list[FieldDef]]:
    """crm-followup's custom fields (docs/crm-fields.md), which ``followup setup salesforce`` creates."""
    activity = [
        _f("Followup_Key__c", "string", length=40, custom=True, external_id=True, label="Follow-up Key"),
        _f("Followup_Rule__c", "string", length=255, custom=True, label="Follow-up Rule"),
    ]
    return {
        "Opportunity": [
            _f("Followup_Next_Step_Why__c", "string", custom=True),
            _f("Followup_Next_Step_Date__c", "date", custom=True),
            _f("Followup_Agreed_Interval_Days__c", "double", custom=True),
            _f("Followup_Agreed_Channel__c", "picklist", custom=True, picklist=("meeting", "call", "email")),
            _f("Followup_Readiness__c", "picklist", custom=True, picklist=("ready", "not_now", "unknown")),
            _f("Followup_Qualification_Score__c", "double", custom=True),
            _f("Followup_State__c", "picklist", custom=True, picklist=("active", "nurture", "stopped")),
            _f("Followup_State_Since__c", "datetime", custom=True),
            _f("Followup_Reason__c", "string", custom=True),
            _f("Followup_Close_Reason__c", "string", custom=True),
        ],
        "Task": activity,
        "Event": list(activity),
    }


def standard_objects() -> list[tuple[str, str, str, list[FieldDef]]]:
    owner = _ref("OwnerId", "User", "Owner", nillable=False)
    what = ("Opportunity", "Account", "Campaign")
    who = ("Contact", "Lead")
    return [
        (
            "User",
            "005",
            "User",
            [
                _f("Username", "string", length=80, required=True),
                _f("FirstName", "string", length=40),
                _f("LastName", "string", length=80, required=True),
                _ro("Name", "string", length=121, label="Full Name"),
                _f("Email", "email", length=128, required=True),
                _f("Alias", "string", length=8),
                _f("TimeZoneSidKey", "picklist", length=40, required=True),
                _f("LocaleSidKey", "picklist", length=40),
                _f("IsActive", "boolean", nillable=False),
                _f("Title", "string", length=80),
                _f("Department", "string", length=80),
            ],
        ),
        (
            "Account",
            "001",
            "Account",
            [
                _f("Name", "string", required=True),
                _f("Website", "url"),
                _f("Industry", "picklist", length=255),
                _f("BillingCountry", "string", length=80),
                _f("Phone", "phone"),
                owner,
            ],
        ),
        (
            "Contact",
            "003",
            "Contact",
            [
                _f("FirstName", "string", length=40),
                _f("LastName", "string", length=80, required=True),
                _ro("Name", "string", length=121, label="Full Name"),
                _f("Email", "email", length=80),
                _f("Phone", "phone"),
                _f("Title", "string", length=128),
                _ref("AccountId", "Account", "Account"),
                owner,
            ],
        ),
        (
            "Lead",
            "00Q",
            "Lead",
            [
                _f("FirstName", "string", length=40),
                _f("LastName", "string", length=80, required=True),
                _ro("Name", "string", length=121, label="Full Name"),
                _f("Company", "string", required=True),
                _f("Email", "email", length=80),
                _f("Phone", "phone"),
                _f("Title", "string", length=128),
                _f(
                    "Status",
                    "picklist",
                    picklist=(
                        "Open - Not Contacted",
                        "Working - Contacted",
                        "Closed - Converted",
                        "Closed - Not Converted",
                    ),
                    default_value="Open - Not Contacted",
                    nillable=False,
                ),
                _ro("IsConverted", "boolean", nillable=False),
                owner,
            ],
        ),
        (
            "OpportunityStage",
            "01J",
            "Opportunity Stage",
            [
                _ro("ApiName", "string"),
                _ro("MasterLabel", "string"),
                _ro("IsActive", "boolean", nillable=False),
                _ro("IsClosed", "boolean", nillable=False),
                _ro("IsWon", "boolean", nillable=False),
                _ro("DefaultProbability", "percent"),
                _ro("ForecastCategory", "picklist", length=40),
                _ro("ForecastCategoryName", "picklist", picklist=FORECAST_CATEGORIES),
                _ro("SortOrder", "int"),
                _ro("Description", "string"),
            ],
        ),
        (
            "Opportunity",
            "006",
            "Opportunity",
            [
                _f("Name", "string", length=120, required=True),
                _f("StageName", "picklist", length=255, required=True),
                _ro("IsClosed", "boolean", nillable=False),
                _ro("IsWon", "boolean", nillable=False),
                _f("NextStep", "string"),
                _f("CloseDate", "date", required=True),
                _f("Amount", "currency"),
                _f("Probability", "percent"),
                _f("ForecastCategoryName", "picklist", picklist=FORECAST_CATEGORIES),
                _f(
                    "Type",
                    "picklist",
                    picklist=(
                        "Existing Customer - Upgrade",
                        "Existing Customer - Replacement",
                        "Existing Customer - Downgrade",
                        "New Customer",
                    ),
                ),
                _f("LeadSource", "picklist"),
                _f("Description", "textarea"),
                _ro("LastActivityDate", "date"),
                _ro("HasOpenActivity", "boolean", nillable=False),
                _ro("HasOverdueTask", "boolean", nillable=False),
                _ro("LastStageChangeDate", "datetime"),
                _ref("AccountId", "Account", "Account"),
                owner,
            ],
        ),
        (
            "OpportunityContactRole",
            "00K",
            "Opportunity Contact Role",
            [
                _ref("OpportunityId", "Opportunity", "Opportunity", required=True, updateable=False),
                _ref("ContactId", "Contact", "Contact", required=True),
                _f("Role", "picklist", length=40, picklist=OPPORTUNITY_ROLES),
                _f("IsPrimary", "boolean", nillable=False),
            ],
        ),
        (
            "Task",
            "00T",
            "Task",
            [
                _f("Subject", "combobox"),
                _f("Description", "textarea"),
                _f("ActivityDate", "date", label="Due Date Only"),
                _f(
                    "Status",
                    "picklist",
                    length=40,
                    picklist=TASK_STATUSES,
                    default_value="Not Started",
                    nillable=False,
                ),
                _f(
                    "Priority",
                    "picklist",
                    length=40,
                    picklist=("High", "Normal", "Low"),
                    default_value="Normal",
                    nillable=False,
                ),
                _ro("IsClosed", "boolean", nillable=False),
                _ro("IsHighPriority", "boolean", nillable=False),
                _f("Type", "picklist", length=40, picklist=("Call", "Email", "Meeting", "Other")),
                _f(
                    "TaskSubtype",
                    "picklist",
                    length=40,
                    updateable=False,
                    restricted=True,
                    picklist=("Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn"),
                ),
                _f(
                    "CallType",
                    "picklist",
                    length=40,
                    restricted=True,
                    picklist=("Internal", "Inbound", "Outbound"),
                ),
                _f("CallDisposition", "string"),
                _f("CallDurationInSeconds", "int"),
                _f("CallObject", "string"),
                _f("CompletedDateTime", "datetime", createable=False, updateable=False),
                _ref("WhatId", what, "What"),
                _ref("WhoId", who, "Who"),
                _ref("AccountId", "Account", "Account", createable=False, updateable=False),
                owner,
            ],
        ),
        (
            "Event",
            "00U",
            "Event",
            [
                _f("Subject", "combobox"),
                _f("Description", "textarea"),
                _f("StartDateTime", "datetime"),
                _f("EndDateTime", "datetime"),
                _f("ActivityDateTime", "datetime"),
                _f("ActivityDate", "date"),
                _f("DurationInMinutes", "int"),
                _f("IsAllDayEvent", "boolean", nillable=False),
                _f("Type", "picklist", length=40, picklist=("Call", "Email", "Meeting", "Other")),
                _f("EventSubtype", "picklist", length=40, updateable=False, picklist=("Event",)),
                _f("ShowAs", "picklist", length=40, picklist=("Busy", "OutOfOffice", "Free")),
                _f("Location", "string"),
                _ref("WhatId", what, "What"),
                _ref("WhoId", who, "Who"),
                _ref("AccountId", "Account", "Account", createable=False, updateable=False),
                owner,
            ],
        ),
        (
            "EmailMessage",
            "02s",
            "Email Message",
            [
                _f("Subject", "string", length=3000),
                _f("TextBody", "textarea"),
                _f("HtmlBody", "textarea"),
                _f("Incoming", "boolean", nillable=False, updateable=False),
                _f("MessageDate", "datetime"),
                _f("FromAddress", "email"),
                _f("FromName", "string", length=1000),
                _f("ToAddress", "string", length=4000),
                _f("CcAddress", "string", length=4000),
                _f("Status", "picklist", length=40, picklist=("0", "1", "2", "3", "4", "5"), required=True),
                _ro("IsBounced", "boolean", nillable=False),
                _ref("RelatedToId", ("Opportunity", "Account", "Campaign"), "RelatedTo"),
                _ref("ActivityId", "Task", "Activity"),
            ],
        ),
        (
            "Campaign",
            "701",
            "Campaign",
            [
                _f("Name", "string", length=80, required=True),
                _f("IsActive", "boolean", nillable=False),
                _f("Status", "picklist", picklist=("Planned", "In Progress", "Completed", "Aborted")),
                _f("Type", "picklist"),
                _f("StartDate", "date"),
                _f("EndDate", "date"),
                _f("Description", "textarea"),
                owner,
            ],
        ),
        (
            "CampaignMember",
            "00v",
            "Campaign Member",
            [
                _ref("CampaignId", "Campaign", "Campaign", required=True, updateable=False),
                _ref("ContactId", "Contact", "Contact", updateable=False),
                _ref("LeadId", "Lead", "Lead", updateable=False),
                _f("Status", "picklist", length=40),
                _ro("HasResponded", "boolean", nillable=False),
                _ro("FirstRespondedDate", "date"),
                _ro("LeadOrContactId", "reference", reference_to=("Contact", "Lead")),
            ],
        ),
        (
            "TaskStatus",
            "01J",  # picklist entries (OpportunityStage, TaskStatus, ...) share the 01J key prefix
            "Task Status",
            [
                _ro("ApiName", "string"),
                _ro("MasterLabel", "string"),
                _ro("IsClosed", "boolean", nillable=False),
                _ro("IsDefault", "boolean", nillable=False),
                _ro("SortOrder", "int"),
            ],
        ),
        (
            "PermissionSet",
            "0PS",
            "Permission Set",
            [
                _f("Name", "string", length=80, required=True),
                _f("Label", "string", length=80, required=True),
                _f("Description", "string"),
                _ro("IsOwnedByProfile", "boolean", nillable=False),
            ],
        ),
        (
            "PermissionSetAssignment",
            "0Pa",
            "Permission Set Assignment",
            [
                _ref("AssigneeId", "User", "Assignee", required=True, updateable=False),
                _ref("PermissionSetId", "PermissionSet", "PermissionSet", required=True, updateable=False),
            ],
        ),
        (
            "CampaignMemberStatus",
            "01Y",
            "Campaign Member Status",
            [
                _ref("CampaignId", "Campaign", "Campaign", required=True, updateable=False),
                _f("Label", "string", required=True),
                _f("IsDefault", "boolean", nillable=False),
                _f("HasResponded", "boolean", nillable=False),
                _f("SortOrder", "int"),
            ],
        ),
    ]


CHILD_RELATIONSHIPS: tuple[tuple[str, str, str, str], ...] = (
    # parent, relationship name, child object, child field
    ("Opportunity", "OpportunityContactRoles", "OpportunityContactRole", "OpportunityId"),
    ("Opportunity", "Tasks", "Task", "WhatId"),
    ("Opportunity", "Events", "Event", "WhatId"),
    ("Opportunity", "Emails", "EmailMessage", "RelatedToId"),
    ("Account", "Contacts", "Contact", "AccountId"),
    ("Account", "Opportunities", "Opportunity", "AccountId"),
    ("Account", "Tasks", "Task", "AccountId"),
    ("Account", "Events", "Event", "AccountId"),
    ("Contact", "Tasks", "Task", "WhoId"),
    ("Contact", "Events", "Event", "WhoId"),
    ("Contact", "OpportunityContactRoles", "OpportunityContactRole", "ContactId"),
    ("Contact", "CampaignMembers", "CampaignMember", "ContactId"),
    ("Lead", "Tasks", "Task", "WhoId"),
    ("Lead", "Events", "Event", "WhoId"),
    ("Lead", "CampaignMembers", "CampaignMember", "LeadId"),
    ("Campaign", "CampaignMembers", "CampaignMember", "CampaignId"),
    ("Campaign", "Tasks", "Task", "WhatId"),
    ("User", "Opportunities", "Opportunity", "OwnerId"),
)
