"""The CRM-neutral domain model: what the engine reads (deals and their surroundings) and what it decides.

Everything here is immutable data. Connectors map HubSpot and Salesforce records into these types at
their boundary; the engine never sees a CRM payload. All datetimes are timezone-aware (UTC unless a field
says otherwise); dates without a time are plain ``date`` values in the owner's calendar.

Reading guide:
    Owner, Pipeline, Stage       who works the deal, and where it can move
    Contact, Activity, AutoTask  who the deal talks to, what happened, what crm-followup left open
    TaskItem, ChecklistItem      the items of a combined task: their state, and what the rep reads
    Deal                         the aggregate the engine evaluates, one at a time
    Action (a union)             what the engine wants done; every action carries a stable idempotency key
    Decision                     one deal's actions plus every rule's verdict, for ``followup explain``
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum
from hashlib import sha256

FieldValue = str | int | float | bool | date | datetime | None


# --------------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------------


class Channel(StrEnum):
    """How the customer agreed to be followed up; also the kind of task a rep gets."""

    MEETING = "meeting"
    CALL = "call"
    EMAIL = "email"


class TaskType(StrEnum):
    """The task types both CRMs can show (HubSpot hs_task_type, Salesforce TaskSubtype/Type)."""

    CALL = "call"
    EMAIL = "email"
    MEETING = "meeting"
    TODO = "todo"


class Priority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class ActivityKind(StrEnum):
    CALL = "call"
    EMAIL = "email"
    MEETING = "meeting"
    NOTE = "note"
    TASK = "task"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class Outcome(StrEnum):
    """What came of an activity, reduced to what the rules need."""

    CONNECTED = "connected"  # call: somebody talked to somebody
    NO_ANSWER = "no_answer"
    VOICEMAIL = "voicemail"
    BUSY = "busy"
    WRONG_NUMBER = "wrong_number"
    SENT = "sent"  # email: outbound, no reply known
    REPLIED = "replied"  # email: an inbound reply (direction inbound)
    BOUNCED = "bounced"
    SCHEDULED = "scheduled"  # meeting booked, not yet held
    COMPLETED = "completed"  # meeting held, task done
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"
    RESCHEDULED = "rescheduled"
    UNKNOWN = "unknown"


class ContactRole(StrEnum):
    DECISION_MAKER = "decision_maker"
    ECONOMIC_BUYER = "economic_buyer"
    CHAMPION = "champion"
    INFLUENCER = "influencer"
    GATEKEEPER = "gatekeeper"
    USER = "user"
    OTHER = "other"


class Readiness(StrEnum):
    """Whether a qualified buyer is ready to buy now (a CRM field the admin or rep maintains)."""

    READY = "ready"
    NOT_NOW = "not_now"
    UNKNOWN = "unknown"


class FollowupState(StrEnum):
    """crm-followup's own state of a deal, written back to the CRM so that it survives everything."""

    ACTIVE = "active"
    NURTURE = "nurture"
    STOPPED = "stopped"


class DealField(StrEnum):
    """Canonical names of the deal fields crm-followup reads and writes.

    Connectors map each to a CRM property (HubSpot) or field (Salesforce); the mapping is configurable.
    ``SetDealFields`` may also name any other CRM field verbatim (a policy's own extra fields).
    """

    NEXT_STEP = "next_step"  # what (HubSpot hs_next_step, Salesforce NextStep)
    NEXT_STEP_WHY = "next_step_why"
    NEXT_STEP_DATE = "next_step_date"
    AGREED_INTERVAL_DAYS = "agreed_interval_days"
    AGREED_CHANNEL = "agreed_channel"
    READINESS = "readiness"
    QUALIFICATION_SCORE = "qualification_score"
    FOLLOWUP_STATE = "followup_state"
    FOLLOWUP_STATE_SINCE = "followup_state_since"
    FOLLOWUP_REASON = "followup_reason"
    CLOSE_REASON = "close_reason"  # HubSpot closed_lost_reason, Salesforce a configurable field


# --------------------------------------------------------------------------------------------------
# Who and where
# --------------------------------------------------------------------------------------------------


WEEKDAYS = frozenset({0, 1, 2, 3, 4})


@dataclass(frozen=True, slots=True)
class WorkingHours:
    """Local working hours on working days (0 = Monday)."""

    start: time = time(9, 0)
    end: time = time(17, 0)
    days: frozenset[int] = WEEKDAYS


@dataclass(frozen=True, slots=True)
class Owner:
    id: str
    name: str = ""
    email: str | None = None
    time_zone: str | None = None  # IANA name; None: the policy's calendar time zone
    working_hours: WorkingHours | None = None  # None: the policy's working hours
    team: str | None = None
    active: bool = True


@dataclass(frozen=True, slots=True)
class Stage:
    id: str
    label: str
    pipeline_id: str
    display_order: int = 0
    is_closed: bool = False
    is_won: bool = False
    probability: float | None = None


@dataclass(frozen=True, slots=True)
class Pipeline:
    id: str
    label: str
    stages: tuple[Stage, ...] = ()

    def stage(self, stage_id: str) -> Stage | None:
        return next((s for s in self.stages if s.id == stage_id), None)


# --------------------------------------------------------------------------------------------------
# The deal aggregate
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Contact:
    id: str
    name: str = ""
    email: str | None = None
    roles: frozenset[ContactRole] = frozenset()
    time_zone: str | None = None
    is_primary: bool = False


@dataclass(frozen=True, slots=True)
class Activity:
    """One touch: a call, email, meeting, note or completed task, on the deal or on one of its contacts."""

    id: str
    kind: ActivityKind
    direction: Direction
    occurred_at: datetime
    outcome: Outcome = Outcome.UNKNOWN
    contact_ids: tuple[str, ...] = ()
    created_by_followup: bool = False


class CloseReason(StrEnum):
    SETTLED = "settled"  # what the task asked for is now in the CRM
    SUPERSEDED = "superseded"  # a signal or a newer task replaced it
    EXPIRED = "expired"  # nobody acted on it
    DEAL_STOPPED = "deal_stopped"  # the deal was closed or went to nurture


# How a closed item of a combined task reads on its checklist ("done 2026-03-05").
CLOSED_ITEM_WORDS: Mapping[CloseReason, str] = {
    CloseReason.SETTLED: "done",
    CloseReason.SUPERSEDED: "no longer needed",
    CloseReason.EXPIRED: "expired",
    CloseReason.DEAL_STOPPED: "stopped",
}


@dataclass(frozen=True, slots=True)
class TaskItem:
    """One need in a combined task (``tasks.combine``): which rule asked, its intent, and whether it is done.

    This is the state crm-followup keeps in the CRM with the task (a marker line, docs/crm-fields.md), so a
    later cycle knows which items are open: ``key`` is the intent key the rule would give a task of its
    own, ``closed`` why and ``closed_on`` when (the owner's local date) the item stopped being open.
    """

    rule_id: str
    key: str
    added_at: datetime
    due_at: datetime
    closed: CloseReason | None = None
    closed_on: date | None = None

    @property
    def is_open(self) -> bool:
        return self.closed is None


@dataclass(frozen=True, slots=True)
class AutoTask:
    """A task crm-followup created (found in the CRM by its idempotency key), open or recently closed.

    ``items`` is the checklist of a combined task as stored in the CRM; empty for a task of one rule.
    """

    id: str
    key: str
    rule_id: str
    created_at: datetime
    due_at: datetime
    is_open: bool = True
    owner_id: str | None = None
    task_type: TaskType = TaskType.TODO
    subject: str = ""
    items: tuple[TaskItem, ...] = ()
    modified_at: datetime | None = None  # the CRM's modification stamp as last read or written; None: unknown


@dataclass(frozen=True, slots=True)
class RepTask:
    """A follow-up task the deal's people set themselves (not crm-followup's), as the CRM has it.

    Connectors report the open tasks on the deal (HubSpot: associated with the deal; Salesforce: ``WhatId``
    the opportunity) of a follow-up kind: call, email or to-do (docs/crm-fields.md). One crm-followup
    closed (``nurture.close_rep_tasks``) stays in the mirror as closed, with the CRM's stamp of that close,
    until the deal is read again: the next pull knows the change was ours.
    """

    id: str
    owner_id: str | None
    task_type: TaskType = TaskType.TODO
    subject: str = ""
    due_at: datetime | None = None
    is_open: bool = True
    modified_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class NextStep:
    what: str | None = None
    why: str | None = None
    when: date | None = None


@dataclass(frozen=True, slots=True)
class Agreement:
    """A follow-up the customer agreed: ``interval_days`` after the last customer touch, by ``channel``."""

    interval_days: int | None = None
    channel: Channel | None = None


def _occurred_at(activity: Activity) -> datetime:
    return activity.occurred_at


@dataclass(frozen=True, slots=True)
class Deal:
    """A deal (HubSpot) or opportunity (Salesforce) with everything the rules look at.

    ``activities`` are sorted by ``occurred_at`` and include the touches logged on the deal's contacts.
    ``auto_tasks`` are the tasks crm-followup created for this deal, as found in the CRM; ``rep_tasks`` the
    open follow-up tasks on it that people created (``nurture.close_rep_tasks`` may close the owner's).
    ``fields`` holds any extra CRM fields a policy names (qualification fields, custom flags), by CRM name.
    """

    id: str
    name: str
    pipeline_id: str
    stage: Stage
    created_at: datetime
    modified_at: datetime
    owner_id: str | None = None
    stage_entered_at: datetime | None = None
    amount: float | None = None
    currency: str | None = None
    close_date: date | None = None
    next_step: NextStep = NextStep()
    agreement: Agreement = Agreement()
    qualification_score: float | None = None
    readiness: Readiness = Readiness.UNKNOWN
    followup_state: FollowupState = FollowupState.ACTIVE
    followup_state_since: datetime | None = None
    fields: Mapping[str, FieldValue] = field(default_factory=dict)
    contacts: tuple[Contact, ...] = ()
    activities: tuple[Activity, ...] = ()
    auto_tasks: tuple[AutoTask, ...] = ()
    rep_tasks: tuple[RepTask, ...] = ()  # open follow-up tasks of the deal's people, not ours

    def __post_init__(self) -> None:
        # The engine reads the history newest first and stops at the last conversation, so the order is
        # a guarantee, not a hope: connectors sort already; anything else (a snapshot written by hand)
        # is put in order here, equal moments keeping their given order.
        acts = self.activities
        if len(acts) > 1:
            moments = [a.occurred_at for a in acts]
            if moments != sorted(moments):  # C-speed on the usual sorted input: deals are decoded in bulk
                object.__setattr__(self, "activities", tuple(sorted(acts, key=_occurred_at)))

    @property
    def is_closed(self) -> bool:
        return self.stage.is_closed

    @property
    def primary_contact(self) -> Contact | None:
        for contact in self.contacts:
            if contact.is_primary:
                return contact
        return self.contacts[0] if self.contacts else None


# --------------------------------------------------------------------------------------------------
# What the engine decides
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Evidence:
    """One fact behind a decision, for the rep's task body, the audit trail and ``followup explain``."""

    label: str  # e.g. "unanswered touches", "last inbound", "activities"
    value: str  # already rendered: "6", "2026-03-02", "call:123, email:456"


@dataclass(frozen=True, slots=True)
class Explanation:
    summary: str
    evidence: tuple[Evidence, ...] = ()


@dataclass(frozen=True, slots=True)
class ChecklistItem:
    """One item of a combined task as the rep reads it: its state, what to do, and why (with evidence)."""

    item: TaskItem
    title: str  # what to do: the rule's task subject
    detail: str = ""  # how: the rule's task body (shown for open items)
    why: str = ""
    evidence: tuple[Evidence, ...] = ()


def make_key(*parts: str) -> str:
    """A short, stable idempotency key for one intent: the same parts always give the same key.

    The ``cf-`` prefix makes the key easy to find in a CRM text field; 20 hex digits keep collisions
    out of reach (80 bits) while fitting every CRM text field.
    """
    return "cf-" + sha256("\x1f".join(parts).encode()).hexdigest()[:20]


@dataclass(frozen=True, slots=True, kw_only=True)
class _ActionBase:
    key: str  # idempotency key: the same intent gives the same key on every run
    deal_id: str
    rule_id: str
    explanation: Explanation


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateTask(_ActionBase):
    owner_id: str | None
    subject: str
    body: str
    due_at: datetime  # UTC, already inside the owner's working hours
    task_type: TaskType = TaskType.TODO
    priority: Priority = Priority.MEDIUM
    contact_id: str | None = None
    # When the intent fell due, if that was before today: the task is then due at the next working moment
    # (a task created overdue helps nobody), and the planner still ranks it by how long it is overdue.
    fell_due_at: datetime | None = None
    # A combined task's checklist (``tasks.combine``): one item per rule; empty for a task of one rule.
    items: tuple[ChecklistItem, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateTask(_ActionBase):
    task_id: str
    task_key: str  # the key the task was created with; it keeps it
    due_at: datetime | None = None
    subject: str | None = None
    body: str | None = None
    priority: Priority | None = None
    task_type: TaskType | None = None
    # A combined task's checklist after the update (items marked done, added); empty: unchanged.
    items: tuple[ChecklistItem, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseTask(_ActionBase):
    task_id: str
    task_key: str  # "" for a rep's own task (nurture.close_rep_tasks): it never gets our key line
    reason: CloseReason
    # A combined task's final checklist (nothing left open) and its text as the rep reads it; else empty.
    items: tuple[ChecklistItem, ...] = ()
    body: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeStage(_ActionBase):
    pipeline_id: str
    stage_id: str
    close_reason: str | None = None  # written to the CRM's lost/close reason field
    expected_modified_at: datetime | None = None  # write only if the deal is unchanged since it was read


@dataclass(frozen=True, slots=True, kw_only=True)
class SetDealFields(_ActionBase):
    fields: Mapping[str, FieldValue]  # DealField values or CRM field names
    expected_modified_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EnrolInNurture(_ActionBase):
    contact_ids: tuple[str, ...]
    nurture: str  # HubSpot list name or Salesforce campaign name, from the policy


@dataclass(frozen=True, slots=True, kw_only=True)
class ReactivateFromNurture(_ActionBase):
    contact_ids: tuple[str, ...]
    nurture: str
    remove_from_nurture: bool = True


Action = (
    CreateTask | UpdateTask | CloseTask | ChangeStage | SetDealFields | EnrolInNurture | ReactivateFromNurture
)

ACTION_KINDS: Mapping[type[Action], str] = {
    CreateTask: "create_task",
    UpdateTask: "update_task",
    CloseTask: "close_task",
    ChangeStage: "change_stage",
    SetDealFields: "set_deal_fields",
    EnrolInNurture: "enrol_in_nurture",
    ReactivateFromNurture: "reactivate_from_nurture",
}


def action_kind(action: Action) -> str:
    """The snake_case name of an action's kind, for logs, metrics, the ledger and JSON."""
    return ACTION_KINDS[type(action)]


@dataclass(frozen=True, slots=True)
class RuleVerdict:
    """Whether one rule fired for one deal, and why (or why not)."""

    rule_id: str
    fired: bool
    reason: str
    evidence: tuple[Evidence, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    deal_id: str
    actions: tuple[Action, ...] = ()
    verdicts: tuple[RuleVerdict, ...] = ()


@dataclass(frozen=True, slots=True)
class DeferredAction:
    """An action held back by a budget (tasks per owner per day, touches per contact): never dropped."""

    action: Action
    not_before: date
    reason: str


@dataclass(frozen=True, slots=True)
class Plan:
    """The outcome of evaluating many deals and applying the cross-deal budgets."""

    actions: tuple[Action, ...] = ()  # to apply now
    deferred: tuple[DeferredAction, ...] = ()
    decisions: tuple[Decision, ...] = ()
