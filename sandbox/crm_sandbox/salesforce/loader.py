"""Render a CRM-neutral ``crm_sandbox.dataset.Dataset`` as a Salesforce org: what a real org would hold.

Vocabulary choices (also listed in sandbox/README.md):
- owners -> User (TimeZoneSidKey = the IANA zone); companies -> Account; contacts -> Contact.
- pipelines -> one OpportunityStage picklist: Salesforce has no pipelines (sales processes pick subsets of
  one stage list), so stages are merged by label, in pipeline order; StageName is the stage label.
- deal contacts -> OpportunityContactRole; roles in Salesforce's default picklist plus the custom
  "Gatekeeper" (champion -> "Executive Sponsor"... see ``ROLE_NAMES``).
- calls -> Task (TaskSubtype Call, CallType Inbound/Outbound, CallDisposition text); tasks -> Task
  (TaskSubtype Task); emails -> EmailMessage (Incoming, RelatedToId) plus the Task (TaskSubtype Email)
  Enhanced Email logs beside each message; meetings -> Event. A cancelled meeting keeps its Event with
  Subject prefixed "Canceled: " and ShowAs Free (what Exchange/Google calendar sync writes); a no-show is a
  past Event whose Description starts "No-show". Notes have no REST sObject among those served: skipped.
- Opportunity.LastActivityDate, HasOpenActivity and HasOverdueTask are derived as Salesforce does.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from crm_sandbox.dataset import ActivityKind, Dataset, GenActivity, GenStage
from crm_sandbox.salesforce.ids import id_maker, make_id
from crm_sandbox.salesforce.schema import CLOSED_TASK_STATUSES, TASK_STATUSES
from crm_sandbox.salesforce.store import Record, SalesforceStore, to_ms

ROLE_NAMES = {
    "decision_maker": "Decision Maker",
    "economic_buyer": "Economic Buyer",
    "champion": "Executive Sponsor",
    "influencer": "Influencer",
    "gatekeeper": "Gatekeeper",
    "user": "Business User",
    "other": "Other",
}
CALL_DISPOSITIONS = {
    "connected": "Connected",
    "no_answer": "No Answer",
    "voicemail": "Left Voicemail",
    "busy": "Busy",
    "wrong_number": "Wrong Number",
}
INTEGRATION_USERNAME = "integration@crm-followup.sandbox"
_CUSTOM_DEAL_FIELDS = (
    ("Followup_Next_Step_Why__c", "next_step_why"),
    ("Followup_Next_Step_Date__c", "next_step_date"),
    ("Followup_Agreed_Interval_Days__c", "agreed_interval_days"),
    ("Followup_Agreed_Channel__c", "agreed_channel"),
    ("Followup_Readiness__c", "readiness"),
    ("Followup_Qualification_Score__c", "qualification_score"),
    ("Followup_Close_Reason__c", "closed_lost_reason"),
)


def forecast_category(stage: GenStage, probability: float) -> str:
    if stage.is_closed:
        return "Closed" if stage.is_won else "Omitted"
    if probability >= 70:
        return "Commit"
    if probability >= 50:
        return "Best Case"
    return "Pipeline"


def _percent(probability: float) -> float:
    return round(probability * 100 if probability <= 1.0 else probability, 2)


def _utc_ms(value: datetime) -> datetime:
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value if not value.microsecond % 1000 else to_ms(value)


def _stamps(created: datetime, modified: datetime | None, by: str) -> Record:
    c = _utc_ms(created)
    m = _utc_ms(modified) if modified is not None else c
    return {
        "IsDeleted": False,
        "CreatedDate": c,
        "CreatedById": by,
        "LastModifiedDate": m,
        "LastModifiedById": by,
        "SystemModstamp": m,
    }


def _clean(record: Record) -> Record:
    return {k: v for k, v in record.items() if v is not None}


def load_dataset(store: SalesforceStore, ds: Dataset, *, bare: bool) -> None:
    """Fill an empty store from ``ds``; also creates the API (integration) user the sandbox logs in as."""
    with store.lock:
        _load(store, ds, bare=bare)


def _load(store: SalesforceStore, ds: Dataset, *, bare: bool) -> None:
    uid = {o.id: make_id("005", o.id) for o in ds.owners}
    integration_id = make_id("005", max(uid.keys(), default=0) + 1)
    store.integration_user_id = integration_id
    seed_time = ds.now - timedelta(days=730)
    users = [
        _clean(
            {
                "Id": uid[o.id],
                "Username": o.email,
                "FirstName": o.first_name,
                "LastName": o.last_name,
                "Name": f"{o.first_name} {o.last_name}",
                "Email": o.email,
                "Alias": (o.first_name[:1] + o.last_name)[:8].lower(),
                "TimeZoneSidKey": o.time_zone,
                "LocaleSidKey": "en_US",
                "IsActive": True,
                "Department": o.team or None,
                **_stamps(seed_time, None, integration_id),
            }
        )
        for o in ds.owners
    ]
    users.append(
        {
            "Id": integration_id,
            "Username": INTEGRATION_USERNAME,
            "FirstName": "Integration",
            "LastName": "User",
            "Name": "Integration User",
            "Email": INTEGRATION_USERNAME,
            "Alias": "integ",
            "TimeZoneSidKey": "GMT",
            "LocaleSidKey": "en_US",
            "IsActive": True,
            **_stamps(seed_time, None, integration_id),
        }
    )
    store.table("User").bulk_load(users)

    aid = {c.id: make_id("001", c.id) for c in ds.companies}
    store.table("Account").bulk_load(
        _clean(
            {
                "Id": aid[c.id],
                "Name": c.name,
                "Website": c.domain,
                "Industry": c.industry,
                "BillingCountry": c.country,
                "OwnerId": uid.get(c.owner_id, integration_id),
                **_stamps(seed_time, None, integration_id),
            }
        )
        for c in ds.companies
    )
    company_owner = {c.id: uid.get(c.owner_id, integration_id) for c in ds.companies}
    cid = {c.id: make_id("003", c.id) for c in ds.contacts}
    contact_email = {c.id: c.email for c in ds.contacts}
    store.table("Contact").bulk_load(
        _clean(
            {
                "Id": cid[c.id],
                "FirstName": c.first_name,
                "LastName": c.last_name,
                "Name": f"{c.first_name} {c.last_name}",
                "Email": c.email,
                "Phone": c.phone,
                "Title": c.title,
                "AccountId": aid.get(c.company_id),
                "OwnerId": company_owner.get(c.company_id, integration_id),
                **_stamps(c.created_at, c.modified_at, integration_id),
            }
        )
        for c in ds.contacts
    )

    stage_rows: dict[str, Record] = {}
    stage_of: dict[tuple[str, str], GenStage] = {}
    for pipeline in ds.pipelines:
        for stage in sorted(pipeline.stages, key=lambda s: s.display_order):
            stage_of[(pipeline.id, stage.id)] = stage
            if stage.label in stage_rows:
                continue
            prob = _percent(stage.probability)
            category = forecast_category(stage, prob)
            stage_rows[stage.label] = {
                "Id": make_id("01J", len(stage_rows) + 1),
                "ApiName": stage.label,
                "MasterLabel": stage.label,
                "IsActive": True,
                "IsClosed": stage.is_closed,
                "IsWon": stage.is_won,
                "DefaultProbability": prob,
                "ForecastCategory": category.replace(" ", "") if category != "Commit" else "Forecast",
                "ForecastCategoryName": category,
                "SortOrder": len(stage_rows) + 1,
                **_stamps(seed_time, None, integration_id),
            }
    store.table("OpportunityStage").bulk_load(stage_rows.values())
    store.table("TaskStatus").bulk_load(
        {
            "Id": make_id("01J", 1001 + order),
            "ApiName": status,
            "MasterLabel": status,
            "IsClosed": status in CLOSED_TASK_STATUSES,
            "IsDefault": order == 0,
            "SortOrder": order + 1,
            **_stamps(seed_time, None, integration_id),
        }
        for order, status in enumerate(TASK_STATUSES)
    )

    activity_facts = _activity_facts(ds)
    oid = {d.id: make_id("006", d.id) for d in ds.deals}
    opps = []
    roles = []
    role_counter = 0
    for d in ds.deals:
        stage = stage_of.get((d.pipeline_id, d.stage_id)) or GenStage(
            d.stage_id, d.stage_id, 0, 0.0, False, False
        )
        prob = _percent(stage.probability)
        last_activity, has_open, has_overdue = activity_facts.get(d.id, (None, False, False))
        rec: Record = {
            "Id": oid[d.id],
            "Name": d.name,
            "StageName": stage.label,
            "IsClosed": stage.is_closed,
            "IsWon": stage.is_won,
            "NextStep": d.next_step[:255] if d.next_step else None,
            "CloseDate": d.close_date or (d.created_at.date() + timedelta(days=90)),
            "Amount": d.amount,
            "Probability": prob,
            "ForecastCategoryName": forecast_category(stage, prob),
            "AccountId": aid.get(d.company_id),
            "OwnerId": uid.get(d.owner_id, integration_id),
            "LastActivityDate": last_activity,
            "HasOpenActivity": has_open,
            "HasOverdueTask": has_overdue,
            "LastStageChangeDate": to_ms(d.stage_entered_at.astimezone(UTC)),
            **_stamps(d.created_at, d.modified_at, integration_id),
        }
        if not bare:
            for sf_name, attr in _CUSTOM_DEAL_FIELDS:
                rec[sf_name] = getattr(d, attr)
        opps.append(_clean(rec))
        for contact in d.contacts:
            role_counter += 1
            roles.append(
                _clean(
                    {
                        "Id": make_id("00K", role_counter),
                        "OpportunityId": oid[d.id],
                        "ContactId": cid.get(contact.contact_id),
                        "Role": ROLE_NAMES.get(contact.role) if contact.role else None,
                        "IsPrimary": contact.is_primary,
                        **_stamps(d.created_at, d.created_at, integration_id),
                    }
                )
            )
    store.table("Opportunity").bulk_load(opps)
    store.table("OpportunityContactRole").bulk_load(roles)

    ctx = _Ctx(uid, cid, oid, aid, contact_email, integration_id, {d.id: d.company_id for d in ds.deals})
    owner_email = {o.id: o.email for o in ds.owners}
    store.table("Task").bulk_load(_tasks(ds.activities, ctx))
    store.table("Event").bulk_load(_events(ds.activities, ctx))
    store.table("EmailMessage").bulk_load(_emails(ds.activities, ctx, owner_email))


class _Ctx:
    def __init__(
        self,
        uid: dict[int, str],
        cid: dict[int, str],
        oid: dict[int, str],
        aid: dict[int, str],
        contact_email: dict[int, str],
        integration_id: str,
        deal_company: dict[int, int],
    ) -> None:
        self.uid, self.cid, self.oid, self.aid = uid, cid, oid, aid
        self.contact_email = contact_email
        self.integration_id = integration_id
        self.deal_company = deal_company
        self.deal_account = {d: aid.get(c) for d, c in deal_company.items()}

    def common(self, a: GenActivity) -> Record:
        """Owner, lookups and system fields of one activity (the hot loop of a large load)."""
        owner = self.uid.get(a.owner_id, self.integration_id)
        created = a.created_at or a.occurred_at
        if created.tzinfo is not UTC or created.microsecond % 1000:
            created = _utc_ms(created)
        modified = a.modified_at
        if modified is None:
            modified = created
        elif modified.tzinfo is not UTC or modified.microsecond % 1000:
            modified = _utc_ms(modified)
        contact = a.contact_id
        return {
            "OwnerId": owner,
            "WhatId": self.oid.get(a.deal_id),
            "WhoId": self.cid.get(contact) if contact is not None else None,
            "AccountId": self.deal_account.get(a.deal_id),
            "IsDeleted": False,
            "CreatedDate": created,
            "CreatedById": owner,
            "LastModifiedDate": modified,
            "LastModifiedById": owner,
            "SystemModstamp": modified,
        }


def _tasks(activities: tuple[GenActivity, ...], ctx: _Ctx) -> Iterator[Record]:
    task_id = id_maker("00T")
    for a in activities:
        if a.kind is ActivityKind.CALL:
            yield (
                {
                    "Id": task_id(a.id),
                    "Subject": a.subject[:255],
                    "Description": a.body or None,
                    "TaskSubtype": "Call",
                    "Type": "Call",
                    "Status": "Completed",
                    "IsClosed": True,
                    "Priority": "Normal",
                    "IsHighPriority": False,
                    "CallType": "Inbound" if a.direction == "inbound" else "Outbound",
                    "CallDisposition": CALL_DISPOSITIONS.get(a.outcome or "", a.outcome),
                    "CallDurationInSeconds": a.duration_s,
                    "ActivityDate": a.occurred_at.date(),
                    "CompletedDateTime": _utc_ms(a.occurred_at),
                    **ctx.common(a),
                }
            )
        elif a.kind is ActivityKind.TASK:
            done = a.outcome == "completed"
            yield (
                {
                    "Id": task_id(a.id),
                    "Subject": a.subject[:255],
                    "Description": a.body or None,
                    "TaskSubtype": "Task",
                    "Status": "Completed" if done else "Not Started",
                    "IsClosed": done,
                    "Priority": "Normal",
                    "IsHighPriority": False,
                    "ActivityDate": a.occurred_at.date(),
                    "CompletedDateTime": _utc_ms(a.occurred_at) if done else None,
                    **ctx.common(a),
                }
            )
        elif a.kind is ActivityKind.EMAIL:
            yield (
                {
                    "Id": task_id(a.id),
                    "Subject": ("Email: " + a.subject)[:255],
                    "Description": a.body or None,
                    "TaskSubtype": "Email",
                    "Type": "Email",
                    "Status": "Completed",
                    "IsClosed": True,
                    "Priority": "Normal",
                    "IsHighPriority": False,
                    "ActivityDate": a.occurred_at.date(),
                    "CompletedDateTime": _utc_ms(a.occurred_at),
                    **ctx.common(a),
                }
            )


def _events(activities: tuple[GenActivity, ...], ctx: _Ctx) -> Iterator[Record]:
    event_id = id_maker("00U")
    for a in activities:
        if a.kind is not ActivityKind.MEETING:
            continue
        start = _utc_ms(a.occurred_at)
        minutes = max(1, (a.duration_s or 1800) // 60)
        subject = a.subject
        description = a.body or None
        show_as = "Busy"
        if a.outcome == "cancelled":
            subject, show_as = "Canceled: " + subject, "Free"
        elif a.outcome == "no_show":
            description = "No-show" + (": " + a.body if a.body else "")
        yield (
            {
                "Id": event_id(a.id),
                "Subject": subject[:255],
                "Description": description,
                "StartDateTime": start,
                "EndDateTime": start + timedelta(minutes=minutes),
                "ActivityDateTime": start,
                "ActivityDate": start.date(),
                "DurationInMinutes": minutes,
                "IsAllDayEvent": False,
                "Type": "Meeting",
                "EventSubtype": "Event",
                "ShowAs": show_as,
                **ctx.common(a),
            }
        )


def _emails(activities: tuple[GenActivity, ...], ctx: _Ctx, owner_email: dict[int, str]) -> Iterator[Record]:
    message_id, task_id = id_maker("02s"), id_maker("00T")
    for a in activities:
        if a.kind is not ActivityKind.EMAIL:
            continue
        incoming = a.direction == "inbound" or a.outcome == "replied"
        contact = ctx.contact_email.get(a.contact_id) if a.contact_id is not None else None
        owner = owner_email.get(a.owner_id)
        common = ctx.common(a)
        yield (
            {
                "Id": message_id(a.id),
                "Subject": a.subject,
                "TextBody": a.body or None,
                "Incoming": incoming,
                "MessageDate": _utc_ms(a.occurred_at),
                "RelatedToId": common["WhatId"],
                "ActivityId": task_id(a.id),
                "FromAddress": contact if incoming else owner,
                "ToAddress": owner if incoming else contact,
                "Status": "1" if incoming else "3",
                "IsBounced": a.outcome == "bounced",
                **{
                    k: common[k]
                    for k in (
                        "IsDeleted",
                        "CreatedDate",
                        "CreatedById",
                        "LastModifiedDate",
                        "LastModifiedById",
                        "SystemModstamp",
                    )
                },
            }
        )


def _activity_facts(ds: Dataset) -> dict[int, tuple[date | None, bool, bool]]:
    """Per deal: LastActivityDate (latest closed task or past event), open task?, overdue task?"""
    today = ds.now.astimezone(UTC).date()
    facts: dict[int, list[Any]] = {}
    for a in ds.activities:
        if a.kind is ActivityKind.NOTE:
            continue
        f = facts.setdefault(a.deal_id, [None, False, False])
        day = a.occurred_at.astimezone(UTC).date()
        closed = a.kind is not ActivityKind.TASK or a.outcome == "completed"
        if a.kind is ActivityKind.MEETING and day > today:
            continue
        if closed:
            if f[0] is None or day > f[0]:
                f[0] = day
        else:
            f[1] = True
            if day < today:
                f[2] = True
    return {k: (v[0], v[1], v[2]) for k, v in facts.items()}
