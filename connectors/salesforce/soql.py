# ruff: noqa: S608 - values go through quote()/datetime_literal(); names come from settings
"""Pure SOQL builders: every query the connector sends, as text, tested on its own.

Literal rules
(https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_dateformats.htm):
dateTime literals are unquoted ``YYYY-MM-DDThh:mm:ssZ`` and only compare with dateTime fields; strings are
single-quoted with ``\\`` and ``'`` escaped. Cursor filters use ``>=`` on a literal floored to the second, so
flooring can only re-read, never skip.

The opportunity query fetches whole aggregates in one round trip: the opportunity, its contact roles (with the
contact's name and e-mail), its newest Tasks and Events. E-mails come from a separate ``EmailMessage`` query
by ``RelatedToId``
(https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_emailmessage.htm),
ordered by ``RelatedToId`` so that a full pull can merge them with opportunities ordered by ``Id`` without
holding either in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

T = TypeVar("T")

OPPORTUNITY_FIELDS = (
    "Id",
    "Name",
    "StageName",
    "IsClosed",
    "IsWon",
    "CloseDate",
    "Amount",
    "OwnerId",
    "CreatedDate",
    "LastModifiedDate",
    "SystemModstamp",
    "LastStageChangeDate",
    "IsDeleted",
)
CONTACT_ROLE_FIELDS = (
    "Id",
    "ContactId",
    "Role",
    "IsPrimary",
    "Contact.Name",
    "Contact.Email",
    "SystemModstamp",
)
TASK_FIELDS_BASE = (
    "Id",
    "Subject",
    "Status",
    "IsClosed",
    "ActivityDate",
    "CompletedDateTime",
    "TaskSubtype",
    "Type",
    "CallType",
    "CallDisposition",
    "Priority",
    "OwnerId",
    "WhoId",
    "CreatedDate",
    "SystemModstamp",
)
EVENT_FIELDS = (
    "Id",
    "Subject",
    "Description",
    "ShowAs",
    "StartDateTime",
    "EndDateTime",
    "ActivityDateTime",
    "IsAllDayEvent",
    "Type",
    "WhoId",
    "OwnerId",
    "CreatedDate",
    "SystemModstamp",
)
EMAIL_FIELDS = (
    "Id",
    "RelatedToId",
    "Incoming",
    "MessageDate",
    "Status",
    "IsBounced",
    "ActivityId",
    "SystemModstamp",
)


def quote(value: str) -> str:
    """A SOQL string literal."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r")
    return f"'{escaped}'"


def datetime_literal(value: datetime) -> str:
    """A SOQL dateTime literal in UTC, floored to the second."""
    if value.tzinfo is None:
        raise ValueError("SOQL dateTime literals need a timezone-aware datetime")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def in_list(values: Iterable[str]) -> str:
    """``('a','b')`` for an ``IN`` clause; callers never pass an empty list."""
    items = [quote(v) for v in values]
    if not items:
        raise ValueError("an IN list needs at least one value")
    return "(" + ",".join(items) + ")"


def chunked(values: Sequence[T], size: int) -> list[Sequence[T]]:
    """``values`` in slices of at most ``size`` (URI length and collection limits)."""
    return [values[i : i + size] for i in range(0, len(values), size)]


@dataclass(frozen=True, slots=True)
class OpportunityShape:
    """Which fields the opportunity aggregate query selects (mapped, extra, task key fields)."""

    deal_fields: tuple[str, ...]  # mapped DealField fields and a policy's extra fields
    task_key_field: str
    task_rule_field: str
    activities_per_deal: int

    def select(self) -> str:
        fields = list(dict.fromkeys((*OPPORTUNITY_FIELDS, *self.deal_fields)))
        # Description: a combined task keeps its checklist's state there (connectors.checklist).
        tasks = ", ".join((*TASK_FIELDS_BASE, "Description", self.task_key_field, self.task_rule_field))
        limit = self.activities_per_deal
        return (
            f"SELECT {', '.join(fields)}, "
            f"(SELECT {', '.join(CONTACT_ROLE_FIELDS)} FROM OpportunityContactRoles), "
            f"(SELECT {tasks} FROM Tasks ORDER BY CreatedDate DESC LIMIT {limit}), "
            f"(SELECT {', '.join(EVENT_FIELDS)} FROM Events ORDER BY StartDateTime DESC LIMIT {limit}) "
            "FROM Opportunity"
        )

    def all_opportunities(self) -> str:
        """Every live opportunity in ``Id`` order."""
        return f"{self.select()} ORDER BY Id"

    def changed_records_since(self, since: datetime) -> str:
        """The opportunity records changed (or deleted: run with queryAll) since ``since``, without child
        sets: enough to tell our own writes' echo (``LastModifiedById``) from changes that need the
        whole aggregate."""
        fields = list(dict.fromkeys((*OPPORTUNITY_FIELDS, *self.deal_fields, "LastModifiedById")))
        return (
            f"SELECT {', '.join(fields)} FROM Opportunity "
            f"WHERE SystemModstamp >= {datetime_literal(since)} ORDER BY SystemModstamp, Id"
        )

    def by_ids(self, ids: Iterable[str]) -> str:
        return f"{self.select()} WHERE Id IN {in_list(ids)} ORDER BY Id"


def changed_parents(
    object_name: str, parent_field: str, since: datetime, parent_type: str | None, extra: tuple[str, ...] = ()
) -> str:
    """Ids of the parents of ``object_name`` rows changed since ``since`` (run with queryAll for deletes)."""
    type_filter = ""
    if parent_type is not None:
        relation = parent_field[:-2] if parent_field.endswith("Id") else parent_field
        type_filter = f" AND {relation}.Type = {quote(parent_type)}"
    return (
        f"SELECT {', '.join((parent_field, *extra))}, SystemModstamp FROM {object_name} "
        f"WHERE SystemModstamp >= {datetime_literal(since)}{type_filter} ORDER BY SystemModstamp"
    )


def emails_for(opportunity_ids: Iterable[str]) -> str:
    return (
        f"SELECT {', '.join(EMAIL_FIELDS)} FROM EmailMessage "
        f"WHERE RelatedToId IN {in_list(opportunity_ids)} ORDER BY RelatedToId"
    )


def emails_all() -> str:
    """E-mails of every opportunity in ``RelatedToId`` order (the merge partner of ``all_opportunities``)."""
    return (
        f"SELECT {', '.join(EMAIL_FIELDS)} FROM EmailMessage "
        "WHERE RelatedTo.Type = 'Opportunity' ORDER BY RelatedToId, Id"
    )


def _contacts_of(opportunity_ids: Iterable[str]) -> str:
    return f"(SELECT ContactId FROM OpportunityContactRole WHERE OpportunityId IN {in_list(opportunity_ids)})"


def contact_tasks(shape: OpportunityShape, opportunity_ids: Iterable[str]) -> str:
    """Closed Tasks logged on any contact of these opportunities, whatever record they relate to."""
    fields = ", ".join((*TASK_FIELDS_BASE, shape.task_key_field, shape.task_rule_field, "WhatId"))
    return f"SELECT {fields} FROM Task WHERE IsClosed = true AND WhoId IN {_contacts_of(opportunity_ids)}"


def contact_events(opportunity_ids: Iterable[str]) -> str:
    """Events logged on any contact of these opportunities, whatever record they relate to."""
    fields = ", ".join((*EVENT_FIELDS, "WhatId"))
    return f"SELECT {fields} FROM Event WHERE WhoId IN {_contacts_of(opportunity_ids)}"


def emails_by_activity(task_ids: Iterable[str]) -> str:
    """The EmailMessages behind e-mail Tasks (Enhanced Email), for their direction."""
    return f"SELECT {', '.join(EMAIL_FIELDS)} FROM EmailMessage WHERE ActivityId IN {in_list(task_ids)}"


def deals_of_contacts(contact_ids: Iterable[str]) -> str:
    where = f"ContactId IN {in_list(contact_ids)}"
    return f"SELECT OpportunityId, ContactId FROM OpportunityContactRole WHERE {where}"


def tasks_by_keys(key_field: str, keys: Iterable[str]) -> str:
    return f"SELECT Id, {key_field} FROM Task WHERE {key_field} IN {in_list(keys)}"


def recent_followup_tasks(key_field: str, limit: int) -> str:
    """The last ``limit`` Tasks crm-followup created (they carry its key), newest first."""
    return (
        f"SELECT Subject, Description, ActivityDate, OwnerId FROM Task WHERE {key_field} != null "
        f"ORDER BY CreatedDate DESC LIMIT {int(limit)}"
    )


def open_tasks(ids: Iterable[str]) -> str:
    """Which of these Tasks are still open, with their descriptions."""
    return f"SELECT Id, Description FROM Task WHERE IsClosed = false AND Id IN {in_list(ids)}"


def opportunity_stamps(ids: Iterable[str], values: Iterable[str] = ()) -> str:
    """The opportunities' modification stamps, and the current ``values`` of the fields named."""
    fields = ", ".join(
        dict.fromkeys(("Id", "LastModifiedDate", "LastModifiedById", "SystemModstamp", *values))
    )
    return f"SELECT {fields} FROM Opportunity WHERE Id IN {in_list(ids)}"


def users(ids: Iterable[str] | None = None) -> str:
    where = f" WHERE Id IN {in_list(ids)}" if ids is not None else ""
    return f"SELECT Id, Name, Email, TimeZoneSidKey, IsActive FROM User{where}"


def opportunity_stages() -> str:
    return (
        "SELECT ApiName, MasterLabel, IsActive, IsClosed, IsWon, DefaultProbability, SortOrder "
        "FROM OpportunityStage ORDER BY SortOrder"
    )


def campaigns_named(names: Iterable[str]) -> str:
    return f"SELECT Id, Name, IsActive FROM Campaign WHERE Name IN {in_list(names)}"


def campaign_members(campaign_id: str, contact_ids: Iterable[str]) -> str:
    return (
        f"SELECT Id, ContactId, Status, HasResponded FROM CampaignMember "
        f"WHERE CampaignId = {quote(campaign_id)} AND ContactId IN {in_list(contact_ids)}"
    )


def campaign_member_statuses(campaign_ids: Iterable[str]) -> str:
    return (
        "SELECT Id, CampaignId, Label, IsDefault, HasResponded FROM CampaignMemberStatus "
        f"WHERE CampaignId IN {in_list(campaign_ids)}"
    )
