"""A CRM-neutral, deterministic sales dataset: what both sandboxes serve, in their own shapes.

``generate(seed, deals, now)`` draws owners, companies, contacts with roles, deals across two pipelines and
all their stages, and activity histories from realistic archetypes (see ``Archetype``). The same seed,
size and ``now`` always give the same dataset, byte for byte. Ids are small positive integers, unique per
kind; each sandbox renders them in its CRM's format (HubSpot: decimal strings; Salesforce: 18-character
ids with the object's key prefix).

Timestamps are timezone-aware UTC and lie before ``now``, except future dates that belong in the future
(close dates, next-step dates, booked meetings).

This module only defines and produces data; it knows nothing about HTTP or about crm-followup's connectors.

    from crm_sandbox.dataset import generate, save, load, generate_or_load

    data = generate(seed=7, deals=10_000, now=datetime(2026, 3, 2, 9, tzinfo=UTC))
    save(data, Path("/tmp/ds"))                 # a pickle plus a readable dataset.json summary
    same = load(Path("/tmp/ds"))                # == data
    data = generate_or_load(7, 100_000, now, Path(".sandbox-cache"))   # what the CLI --data and tests use

The engine lives in sandbox/generator.py (entities), sandbox/archetypes.py (the stories),
sandbox/pipelines.py (the two pipelines) and sandbox/names.py (word pools); the file format in
sandbox/dataset_files.py. Future timestamps, by design: booked meetings (outcome "scheduled") and open tasks
("not_started") have ``occurred_at`` after ``now`` (their ``created_at`` is before it); deal ``close_date``
and ``next_step_date`` may be in the future. Everything else is before ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path


class Archetype(StrEnum):
    """The stories the generator tells; each deal follows one."""

    RESPONSIVE_BUYER = "responsive_buyer"  # replies, meetings held, a good next step
    GHOSTING_PROSPECT = "ghosting_prospect"  # many outbound touches, no inbound for months
    CALL_ME_IN_TWO_WEEKS = "call_me_in_two_weeks"  # connected call, agreed interval 14 days, channel call
    QUALIFIED_NOT_READY = "qualified_not_ready"  # good score, readiness "not_now"
    GATEKEEPER_ONLY = "gatekeeper_only"  # large amount, late stage, only a gatekeeper contact
    UNQUALIFIED_TYRE_KICKER = "unqualified_tyre_kicker"  # no or low qualification score
    MISSING_NEXT_STEP = "missing_next_step"  # no next step at all
    VAGUE_NEXT_STEP = "vague_next_step"  # "follow up", "nachfassen", "återkomma", ...
    RECENTLY_WON = "recently_won"
    RECENTLY_LOST = "recently_lost"
    # Only in datasets generated with histories (``generate(..., history=True)``):
    WON_AFTER_SILENCE = "won_after_silence"  # 7-10 unanswered touches, then a reply and a win
    LOST_AFTER_TOUCHES = "lost_after_touches"  # 8-15 unanswered touches, then closed lost
    NURTURE_COMEBACK = "nurture_comeback"  # parked "not now", back with a reply later
    AGREED_CALLBACKS = "agreed_callbacks"  # callbacks agreed on calls, made early, on time or late


@dataclass(frozen=True, slots=True)
class GenOwner:
    id: int
    first_name: str
    last_name: str
    email: str
    time_zone: str  # IANA name
    working_start: str = "09:00"  # local HH:MM
    working_end: str = "17:00"
    team: str = ""


@dataclass(frozen=True, slots=True)
class GenCompany:
    id: int
    name: str
    domain: str
    industry: str
    country: str
    owner_id: int


@dataclass(frozen=True, slots=True)
class GenContact:
    id: int
    first_name: str
    last_name: str
    email: str
    phone: str
    company_id: int
    title: str
    time_zone: str
    created_at: datetime
    modified_at: datetime


@dataclass(frozen=True, slots=True)
class GenStage:
    id: str  # e.g. "appointmentscheduled"; Salesforce uses ``label`` as StageName
    label: str
    display_order: int
    probability: float
    is_closed: bool
    is_won: bool


@dataclass(frozen=True, slots=True)
class GenPipeline:
    id: str  # "default" is HubSpot's default pipeline id
    label: str
    stages: tuple[GenStage, ...]


@dataclass(frozen=True, slots=True)
class GenDealContact:
    contact_id: int
    role: str | None  # decision_maker | economic_buyer | champion | influencer | gatekeeper | user | None
    is_primary: bool = False


@dataclass(frozen=True, slots=True)
class GenDeal:
    id: int
    name: str
    archetype: Archetype
    pipeline_id: str
    stage_id: str
    amount: float | None
    currency: str
    owner_id: int
    company_id: int
    created_at: datetime
    modified_at: datetime
    stage_entered_at: datetime
    close_date: date | None
    next_step: str | None  # what
    next_step_why: str | None
    next_step_date: date | None  # when
    agreed_interval_days: int | None
    agreed_channel: str | None  # meeting | call | email
    readiness: str | None  # ready | not_now | unknown
    qualification_score: float | None  # 0..100
    closed_lost_reason: str | None
    contacts: tuple[GenDealContact, ...] = ()


class ActivityKind(StrEnum):
    CALL = "call"
    EMAIL = "email"
    MEETING = "meeting"
    NOTE = "note"
    TASK = "task"


@dataclass(frozen=True, slots=True)
class GenActivity:
    """One engagement. ``outcome`` uses neutral words each sandbox renders in its CRM's vocabulary:

    calls: connected | no_answer | voicemail | busy | wrong_number;
    emails: sent (outbound) | replied (inbound) | bounced;
    meetings: scheduled | completed | no_show | cancelled | rescheduled;
    tasks: not_started | completed; notes: none.
    """

    id: int
    kind: ActivityKind
    deal_id: int
    contact_id: int | None
    owner_id: int
    direction: str  # inbound | outbound
    occurred_at: datetime  # call/email time, meeting start, task due date, note time
    outcome: str | None
    subject: str
    body: str
    duration_s: int | None = None  # calls and meetings
    created_at: datetime | None = None  # defaults to occurred_at (future meetings: booked earlier)
    modified_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class GenFieldChange:
    """From ``at`` on, the deal's ``field`` held ``value`` (``None``: empty): one row of a deal's history.

    Fields: ``stage`` (stage id), ``amount``, ``close_date``, ``owner`` (owner id), ``next_step``,
    ``next_step_why``, ``next_step_date``, ``agreed_interval_days``, ``agreed_channel``, ``readiness``,
    ``qualification_score``, ``closed_lost_reason``, and ``contact_added`` (the value is a contact id: that
    contact joined the deal). Every field a deal ever had a value in has a row at the deal's creation (its
    first value) and one per change, so the last row of each field is the deal's current value. Only in
    datasets generated with histories.
    """

    deal_id: int
    at: datetime
    field: str
    value: str | int | float | date | None


@dataclass(frozen=True, slots=True)
class Dataset:
    seed: int
    now: datetime
    owners: tuple[GenOwner, ...] = ()
    companies: tuple[GenCompany, ...] = ()
    contacts: tuple[GenContact, ...] = ()
    pipelines: tuple[GenPipeline, ...] = ()
    deals: tuple[GenDeal, ...] = ()
    activities: tuple[GenActivity, ...] = ()
    meta: dict[str, str] = field(default_factory=dict)
    history: tuple[GenFieldChange, ...] = ()  # by deal, in time order; empty unless generated with history


def generate(seed: int, deals: int, now: datetime, *, history: bool = False) -> Dataset:
    """A dataset of ``deals`` deals for ``seed`` as seen at ``now`` (timezone-aware); deterministic.

    ``history``: also give every deal the history of its fields (``Dataset.history``), with a mix of stories
    spread over the last months (deals won after a long silence, lost after many touches, back from nurture,
    agreed callbacks kept early, on time or late): a pipeline to backtest a policy on. Without it the output
    is what it always was for the same seed.
    """
    from crm_sandbox.generator import generate_dataset  # the engine imports this module's types

    return generate_dataset(seed, deals, now, history=history)


def save(dataset: Dataset, directory: Path) -> None:
    """Write ``dataset`` into ``directory`` (created if needed), replacing a dataset saved there before."""
    from crm_sandbox.dataset_files import write_dataset

    write_dataset(dataset, directory)


def load(directory: Path) -> Dataset:
    """Read a dataset written by ``save``; raises ``FileNotFoundError`` or ``ValueError`` (wrong format)."""
    from crm_sandbox.dataset_files import read_dataset

    return read_dataset(directory)


def generate_or_load(
    seed: int, deals: int, now: datetime, cache_dir: Path, *, history: bool = False
) -> Dataset:
    """Load the dataset for (seed, deals, now) from ``cache_dir`` if saved before, else generate and save it.

    Each (seed, deals, now) gets its own subdirectory, so one cache serves many sizes; a cache written by an
    older generator version is regenerated rather than trusted.
    """
    from crm_sandbox.dataset_files import cached_dataset

    return cached_dataset(seed, deals, now, cache_dir, history)
