"""The portal's property definitions: HubSpot's built-in ones the worker and dataset use, and crm-followup's.

The built-in lists are not all of HubSpot's properties (a real portal has hundreds), only those a sync worker,
the dataset or ``followup setup`` touch; reads of other names are simply absent, as in a portal without them.
"""

from __future__ import annotations

from typing import Any

from crm_sandbox.hubspot.catalog import ENGAGEMENT_TYPES, SINGULAR
from crm_sandbox.hubspot.properties import FOLLOWUP_GROUP, PropertyDef, PropertyGroup, PropertyOption

__all__ = ["builtin_groups", "builtin_properties", "followup_properties", "stage_entry_property"]


def _p(name: str, label: str, kind: str, field_type: str, group: str, **kw: Any) -> PropertyDef:
    return PropertyDef(name, label, kind, field_type, group, **kw)


def _common(group: str, modified: str) -> list[PropertyDef]:
    return [
        _p("hs_object_id", "Record ID", "number", "number", group, read_only=True),
        _p(
            "hs_createdate" if group.endswith("_engagement") else "createdate",
            "Create Date",
            "datetime",
            "date",
            group,
        ),
        _p(modified, "Last Modified Date", "datetime", "date", group, read_only=True),
        _p(
            "hubspot_owner_id",
            "Owner",
            "enumeration",
            "select",
            group,
            external_options=True,
            extra={"referencedObjectType": "OWNER"},
        ),
    ]


def _enum(values: tuple[str, ...]) -> tuple[PropertyOption, ...]:
    return tuple(PropertyOption(v.replace("_", " ").title(), v, i) for i, v in enumerate(values))


def builtin_properties() -> dict[str, list[PropertyDef]]:
    """The built-in properties per object type (those the worker and the dataset use)."""
    g = "dealinformation"
    deals = [
        *_common(g, "hs_lastmodifieddate"),
        _p("dealname", "Deal Name", "string", "text", g),
        _p("amount", "Amount", "number", "number", g),
        _p(
            "deal_currency_code",
            "Currency",
            "enumeration",
            "select",
            g,
            options=_enum(("EUR", "USD", "GBP", "SEK", "CHF")),
        ),
        _p("dealstage", "Deal Stage", "enumeration", "radio", g),
        _p("pipeline", "Pipeline", "enumeration", "select", g),
        _p("closedate", "Close Date", "datetime", "date", g),
        _p("hs_next_step", "Next step", "string", "textarea", g),
        _p("closed_lost_reason", "Closed Lost Reason", "string", "textarea", g),
        _p(
            "hs_is_closed",
            "Is Deal Closed?",
            "bool",
            "booleancheckbox",
            g,
            calculated=True,
            read_only=True,
            options=(PropertyOption("True", "true", 0), PropertyOption("False", "false", 1)),
        ),
        _p(
            "hs_is_closed_won",
            "Is Closed Won",
            "bool",
            "booleancheckbox",
            g,
            calculated=True,
            read_only=True,
            options=(PropertyOption("True", "true", 0), PropertyOption("False", "false", 1)),
        ),
        _p(
            "hs_deal_stage_probability",
            "Deal probability",
            "number",
            "number",
            g,
            calculated=True,
            read_only=True,
        ),
        _p("notes_last_contacted", "Last Contacted", "datetime", "date", g, read_only=True),
        _p("notes_last_updated", "Last Activity Date", "datetime", "date", g, read_only=True),
        _p("notes_next_activity_date", "Next Activity Date", "datetime", "date", g, read_only=True),
        _p("num_contacted_notes", "Number of times contacted", "number", "number", g, read_only=True),
        _p("num_notes", "Number of Sales Activities", "number", "number", g, read_only=True),
        _p("num_associated_contacts", "Number of Associated Contacts", "number", "number", g, read_only=True),
    ]
    g = "contactinformation"
    contacts = [
        *_common(g, "lastmodifieddate"),
        # Exists on contacts, but searching contacts by it finds nothing: use lastmodifieddate
        # (amp-labs/connectors PR #45, HubSpot community). Modelled as a property that is never set.
        _p("hs_lastmodifieddate", "Object last modified date/time", "datetime", "date", g, read_only=True),
        _p("firstname", "First Name", "string", "text", g),
        _p("lastname", "Last Name", "string", "text", g),
        _p("email", "Email", "string", "text", g, has_unique_value=False),
        _p("phone", "Phone Number", "string", "phonenumber", g),
        _p("company", "Company Name", "string", "text", g),
        _p("jobtitle", "Job Title", "string", "text", g),
        _p("hs_timezone", "Time Zone", "enumeration", "select", g),
        _p("associatedcompanyid", "Primary Associated Company ID", "number", "number", g),
    ]
    g = "companyinformation"
    companies = [
        *_common(g, "hs_lastmodifieddate"),
        _p("name", "Company name", "string", "text", g),
        _p("domain", "Company Domain Name", "string", "text", g),
        _p("industry", "Industry", "string", "text", g),
        _p("country", "Country/Region", "string", "text", g),
    ]
    result = {"deals": deals, "contacts": contacts, "companies": companies}
    for kind in ENGAGEMENT_TYPES:
        g = f"{SINGULAR[kind]}_engagement"
        result[kind] = [
            *_common(g, "hs_lastmodifieddate"),
            _p("hs_timestamp", "Activity date", "datetime", "date", g),
        ]
    t, c, e, m, n = (
        "task_engagement",
        "call_engagement",
        "email_engagement",
        "meeting_engagement",
        "note_engagement",
    )
    result["tasks"] += [
        _p("hs_task_subject", "Task Title", "string", "text", t),
        _p("hs_task_body", "Notes", "string", "html", t),
        _p(
            "hs_task_status",
            "Task Status",
            "enumeration",
            "select",
            t,
            options=_enum(("NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED")),
        ),
        _p(
            "hs_task_priority",
            "Priority",
            "enumeration",
            "select",
            t,
            options=_enum(("NONE", "LOW", "MEDIUM", "HIGH")),
        ),
        _p(
            "hs_task_type",
            "Task Type",
            "enumeration",
            "select",
            t,
            options=_enum(("EMAIL", "CALL", "TODO", "LINKED_IN_CONNECT", "LINKED_IN_MESSAGE")),
        ),
        _p("hs_task_completion_date", "Completed at", "datetime", "date", t, read_only=True),
        _p("hs_task_reminders", "Reminder", "string", "text", t),
    ]
    result["calls"] += [
        _p("hs_call_title", "Call Title", "string", "text", c),
        _p("hs_call_body", "Call notes", "string", "html", c),
        _p(
            "hs_call_direction",
            "Call direction",
            "enumeration",
            "select",
            c,
            options=_enum(("INBOUND", "OUTBOUND")),
        ),
        _p("hs_call_disposition", "Call outcome", "string", "text", c),
        _p("hs_call_duration", "Call duration", "number", "number", c),
        _p(
            "hs_call_status",
            "Call status",
            "enumeration",
            "select",
            c,
            options=_enum(
                (
                    "BUSY",
                    "CALLING_CRM_USER",
                    "CANCELED",
                    "COMPLETED",
                    "CONNECTING",
                    "FAILED",
                    "IN_PROGRESS",
                    "NO_ANSWER",
                    "QUEUED",
                    "RINGING",
                )
            ),
        ),
        _p("hs_call_from_number", "From number", "string", "text", c),
        _p("hs_call_to_number", "To number", "string", "text", c),
    ]
    result["emails"] += [
        _p("hs_email_subject", "Email subject", "string", "text", e),
        _p("hs_email_text", "Email body", "string", "textarea", e),
        _p(
            "hs_email_direction",
            "Email direction",
            "enumeration",
            "select",
            e,
            options=_enum(("EMAIL", "INCOMING_EMAIL", "FORWARDED_EMAIL")),
        ),
        _p(
            "hs_email_status",
            "Email send status",
            "enumeration",
            "select",
            e,
            options=_enum(("BOUNCED", "FAILED", "SCHEDULED", "SENDING", "SENT")),
        ),
        _p("hs_email_headers", "Email headers", "string", "text", e),
    ]
    result["meetings"] += [
        _p("hs_meeting_title", "Meeting name", "string", "text", m),
        _p("hs_meeting_body", "Meeting description", "string", "html", m),
        _p("hs_meeting_start_time", "Start time", "datetime", "date", m),
        _p("hs_meeting_end_time", "End time", "datetime", "date", m),
        _p(
            "hs_meeting_outcome",
            "Meeting outcome",
            "enumeration",
            "select",
            m,
            options=_enum(("SCHEDULED", "COMPLETED", "RESCHEDULED", "NO_SHOW", "CANCELED")),
        ),
        _p("hs_meeting_location", "Location", "string", "text", m),
        _p("hs_internal_meeting_notes", "Internal notes", "string", "html", m),
    ]
    result["notes"] += [_p("hs_note_body", "Note body", "string", "html", n)]
    return result


def stage_entry_property(stage_id: str, stage_label: str) -> PropertyDef:
    """``hs_date_entered_<stageId>``: HubSpot's calculated "Date entered <stage>" deal property."""
    return _p(
        f"hs_date_entered_{stage_id}",
        f"Date entered '{stage_label}'",
        "datetime",
        "date",
        "dealinformation",
        calculated=True,
        read_only=True,
    )


def followup_properties() -> list[PropertyDef]:
    """crm-followup's custom deal properties (docs/crm-fields.md), as ``followup setup`` creates them."""
    g = FOLLOWUP_GROUP
    custom = {
        "hubspot_defined": False,
        "created_at": "2024-01-02T08:00:00.000Z",
        "updated_at": "2024-01-02T08:00:00.000Z",
    }
    return [
        _p("followup_next_step_why", "Next step: why", "string", "textarea", g, **custom),
        _p("followup_next_step_date", "Next step: when", "date", "date", g, **custom),
        _p(
            "followup_agreed_interval_days",
            "Agreed follow-up interval (days)",
            "number",
            "number",
            g,
            **custom,
        ),
        _p(
            "followup_agreed_channel",
            "Agreed channel",
            "enumeration",
            "select",
            g,
            options=_enum(("meeting", "call", "email")),
            **custom,
        ),
        _p(
            "followup_readiness",
            "Readiness",
            "enumeration",
            "select",
            g,
            options=_enum(("ready", "not_now", "unknown")),
            **custom,
        ),
        _p("followup_qualification_score", "Qualification score", "number", "number", g, **custom),
        _p(
            "followup_state",
            "Follow-up state",
            "enumeration",
            "select",
            g,
            options=_enum(("active", "nurture", "stopped")),
            **custom,
        ),
        _p("followup_state_since", "Follow-up state since", "datetime", "date", g, **custom),
        _p("followup_reason", "Follow-up reason", "string", "textarea", g, **custom),
    ]


def builtin_groups() -> dict[str, list[PropertyGroup]]:
    """The property groups holding the built-in properties, per object type."""
    groups = {
        "deals": [PropertyGroup("dealinformation", "Deal information", 0)],
        "contacts": [PropertyGroup("contactinformation", "Contact information", 0)],
        "companies": [PropertyGroup("companyinformation", "Company information", 0)],
    }
    for kind in ENGAGEMENT_TYPES:
        name = f"{SINGULAR[kind]}_engagement"
        groups[kind] = [PropertyGroup(name, f"{SINGULAR[kind].title()} information", 0)]
    return groups
