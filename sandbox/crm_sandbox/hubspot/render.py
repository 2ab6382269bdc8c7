"""Render the CRM-neutral dataset into HubSpot property values, and HubSpot's timestamp formats.

HubSpot returns every property value as a string: numbers as ``"1200.5"``, booleans as ``"true"``,
datetimes as ISO-8601 UTC with milliseconds (``2019-10-30T03:30:17.883Z``) and date-only properties as
``YYYY-MM-DD``. The dataset's neutral outcome words become HubSpot's vocabulary here (call disposition
GUIDs, ``INCOMING_EMAIL``, ``NO_SHOW``, ...), so nothing else in the sandbox knows the dataset's words.
"""

from __future__ import annotations

import calendar
import functools
import time
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta

from crm_sandbox.dataset import ActivityKind, GenActivity, GenCompany, GenContact, GenDeal, GenStage
from crm_sandbox.hubspot.catalog import CALL_DISPOSITIONS

__all__ = [
    "KIND_TO_TYPE",
    "iso_ms",
    "ms_of",
    "parse_date_ms",
    "parse_datetime_ms",
    "render_activity",
    "render_company",
    "render_contact",
    "render_deal",
]

KIND_TO_TYPE: dict[ActivityKind, str] = {
    ActivityKind.CALL: "calls",
    ActivityKind.EMAIL: "emails",
    ActivityKind.MEETING: "meetings",
    ActivityKind.NOTE: "notes",
    ActivityKind.TASK: "tasks",
}
_CALL_STATUS = {"no_answer": "NO_ANSWER", "busy": "BUSY"}
_EMAIL_STATUS = {"bounced": "BOUNCED"}
_MEETING_OUTCOME = {
    "scheduled": "SCHEDULED",
    "completed": "COMPLETED",
    "no_show": "NO_SHOW",
    "cancelled": "CANCELED",
    "canceled": "CANCELED",
    "rescheduled": "RESCHEDULED",
}
_DAY_MS = 86_400_000


@functools.lru_cache(maxsize=1 << 18)
def iso_ms(ms: int) -> str:
    """Milliseconds since the epoch as HubSpot writes datetimes: ``2019-10-30T03:30:17.883Z``.

    Cached: every read of a record formats its timestamps, and a portal has far fewer distinct ones than
    reads.
    """
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def ms_of(when: datetime) -> int:
    """A timezone-aware datetime as milliseconds since the epoch (exact: timedelta arithmetic, no floats)."""
    return (when - _EPOCH) // _ONE_MS


def date_ms(day: date) -> int:
    """Midnight UTC of ``day`` in milliseconds: how HubSpot filters and accepts date-only values."""
    return calendar.timegm(day.timetuple()) * 1000


def parse_datetime_ms(value: str) -> int | None:
    """A datetime as HubSpot accepts it on writes and in filters (ms epoch or ISO-8601), else None."""
    text = value.strip()
    if not text:
        return None
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return ms_of(parsed)


def parse_date_ms(value: str) -> int | None:
    """A date-only value (``YYYY-MM-DD`` or a ms epoch / ISO instant) as milliseconds, else None."""
    text = value.strip()
    if len(text) == 10 and text[4] == "-" and text[7] == "-":
        try:
            return date_ms(date.fromisoformat(text))
        except ValueError:
            return None
    return parse_datetime_ms(text)


def format_number(value: float) -> str:
    """Numbers as HubSpot prints them: no trailing ``.0`` on whole values."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render_deal(
    deal: GenDeal,
    stage: GenStage | None,
    calculated: Mapping[str, str],
    custom_fields: bool,
) -> dict[str, str]:
    """A deal's stored properties; ``calculated`` holds the engagement roll-ups computed at load."""
    props: dict[str, str] = {
        "dealname": deal.name,
        "dealstage": deal.stage_id,
        "pipeline": deal.pipeline_id,
        "hubspot_owner_id": str(deal.owner_id),
        "deal_currency_code": deal.currency,
        "createdate": iso_ms(ms_of(deal.created_at)),
        "num_associated_contacts": str(len(deal.contacts)),
        f"hs_date_entered_{deal.stage_id}": iso_ms(ms_of(deal.stage_entered_at)),
    }
    if deal.amount is not None:
        props["amount"] = format_number(deal.amount)
    if deal.close_date is not None:
        props["closedate"] = iso_ms(date_ms(deal.close_date))
    if deal.next_step:
        props["hs_next_step"] = deal.next_step
    if deal.closed_lost_reason:
        props["closed_lost_reason"] = deal.closed_lost_reason
    if stage is not None:
        props["hs_is_closed"] = "true" if stage.is_closed else "false"
        props["hs_is_closed_won"] = "true" if stage.is_won else "false"
        props["hs_deal_stage_probability"] = format_number(stage.probability)
    if custom_fields:
        _put(props, "followup_next_step_why", deal.next_step_why)
        if deal.next_step_date is not None:
            props["followup_next_step_date"] = deal.next_step_date.isoformat()
        if deal.agreed_interval_days is not None:
            props["followup_agreed_interval_days"] = str(deal.agreed_interval_days)
        _put(props, "followup_agreed_channel", deal.agreed_channel)
        _put(props, "followup_readiness", deal.readiness)
        if deal.qualification_score is not None:
            props["followup_qualification_score"] = format_number(deal.qualification_score)
    props.update(calculated)
    return props


def _put(props: dict[str, str], name: str, value: str | None) -> None:
    if value:
        props[name] = value


def hubspot_time_zone(iana: str) -> str:
    """HubSpot's ``hs_timezone`` option value for an IANA zone, e.g. ``europe_slash_berlin``."""
    return iana.lower().replace("/", "_slash_")


def render_contact(contact: GenContact, company_name: str | None, owner_id: int | None) -> dict[str, str]:
    props = {
        "firstname": contact.first_name,
        "lastname": contact.last_name,
        "email": contact.email,
        "phone": contact.phone,
        "jobtitle": contact.title,
        "hs_timezone": hubspot_time_zone(contact.time_zone),
        "associatedcompanyid": str(contact.company_id),
        "createdate": iso_ms(ms_of(contact.created_at)),
    }
    if company_name:
        props["company"] = company_name
    if owner_id is not None:
        props["hubspot_owner_id"] = str(owner_id)
    return props


def render_company(company: GenCompany, created_ms: int) -> dict[str, str]:
    return {
        "name": company.name,
        "domain": company.domain,
        "industry": company.industry,
        "country": company.country,
        "hubspot_owner_id": str(company.owner_id),
        "createdate": iso_ms(created_ms),
    }


def render_activity(activity: GenActivity) -> dict[str, str]:
    """An engagement's properties in its type's vocabulary (see ``GenActivity`` for the neutral words)."""
    when = iso_ms(ms_of(activity.occurred_at))
    created = activity.created_at or activity.occurred_at
    props = {
        "hs_timestamp": when,
        "hubspot_owner_id": str(activity.owner_id),
        "hs_createdate": iso_ms(ms_of(created)),
    }
    kind = activity.kind
    outcome = activity.outcome or ""
    if kind is ActivityKind.CALL:
        props["hs_call_title"] = activity.subject
        props["hs_call_body"] = activity.body
        props["hs_call_direction"] = "INBOUND" if activity.direction == "inbound" else "OUTBOUND"
        props["hs_call_status"] = _CALL_STATUS.get(outcome, "COMPLETED")
        if outcome in CALL_DISPOSITIONS:
            props["hs_call_disposition"] = CALL_DISPOSITIONS[outcome]
        if activity.duration_s is not None:
            props["hs_call_duration"] = str(activity.duration_s * 1000)
    elif kind is ActivityKind.EMAIL:
        props["hs_email_subject"] = activity.subject
        props["hs_email_text"] = activity.body
        props["hs_email_direction"] = "INCOMING_EMAIL" if activity.direction == "inbound" else "EMAIL"
        props["hs_email_status"] = _EMAIL_STATUS.get(outcome, "SENT")
    elif kind is ActivityKind.MEETING:
        props["hs_meeting_title"] = activity.subject
        props["hs_meeting_body"] = activity.body
        props["hs_meeting_start_time"] = when
        end_ms = ms_of(activity.occurred_at) + (activity.duration_s or 1800) * 1000
        props["hs_meeting_end_time"] = iso_ms(end_ms)
        props["hs_meeting_outcome"] = _MEETING_OUTCOME.get(outcome, "SCHEDULED")
    elif kind is ActivityKind.NOTE:
        props["hs_note_body"] = activity.body
    else:
        props["hs_task_subject"] = activity.subject
        props["hs_task_body"] = activity.body
        done = outcome == "completed"
        props["hs_task_status"] = "COMPLETED" if done else "NOT_STARTED"
        props["hs_task_priority"] = "MEDIUM"
        props["hs_task_type"] = _task_type(activity.subject)
        if done:
            props["hs_task_completion_date"] = iso_ms(ms_of(activity.modified_at or activity.occurred_at))
    return props


def _task_type(subject: str) -> str:
    lowered = subject.lower()
    if "call" in lowered or "phone" in lowered:
        return "CALL"
    if "email" in lowered or "e-mail" in lowered or "mail" in lowered:
        return "EMAIL"
    return "TODO"


CONTACTED_TYPES = frozenset({"calls", "emails", "meetings"})


def deal_rollups(engagements: list[tuple[str, dict[str, str]]], now_ms: int) -> dict[str, str]:
    """HubSpot's read-only engagement roll-ups on a deal, from its associated engagements' properties.

    ``notes_last_contacted``: last call, email or meeting up to now; ``notes_last_updated``: last engagement
    of any kind; ``notes_next_activity_date``: earliest open task or scheduled meeting from now on;
    ``num_contacted_notes`` / ``num_notes``: counts. (Semantics per the reference, marked unverified there.)
    """
    last_contacted = last_updated = next_activity = None
    contacted = total = 0
    for kind, props in engagements:
        stamp = parse_datetime_ms(props.get("hs_timestamp", "") or "")
        if stamp is None:
            continue
        total += 1
        is_open_task = kind == "tasks" and props.get("hs_task_status") != "COMPLETED"
        is_booked = kind == "meetings" and props.get("hs_meeting_outcome") in ("SCHEDULED", "RESCHEDULED")
        if (is_open_task or is_booked) and stamp >= now_ms:
            next_activity = stamp if next_activity is None else min(next_activity, stamp)
        if stamp <= now_ms and not is_open_task:
            last_updated = stamp if last_updated is None else max(last_updated, stamp)
            if kind in CONTACTED_TYPES:
                contacted += 1
                last_contacted = stamp if last_contacted is None else max(last_contacted, stamp)
    result = {"num_contacted_notes": str(contacted), "num_notes": str(total)}
    if last_contacted is not None:
        result["notes_last_contacted"] = iso_ms(last_contacted)
    if last_updated is not None:
        result["notes_last_updated"] = iso_ms(last_updated)
    if next_activity is not None:
        result["notes_next_activity_date"] = iso_ms(next_activity)
    return result
