"""The policy file format: strict, frozen pydantic models, one per section, defaults that encode practice.

Every model forbids unknown keys, so a typo is an error with its ``file:line:col`` rather than a silently
ignored setting. Checks that need several fields at once (a nurture escalation needs a nurture list, ...)
live in ``policies.consistency`` because they must run on the merged rules of every scope, not on one
file's fragment. The JSON Schema of these models is ``followup schema``.
"""

from __future__ import annotations

from datetime import date, time
from functools import cached_property
from typing import Annotated, Any, Literal

import holidays
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from config.time_zones import check_time_zone
from policies.bounds import MAX_MAGNITUDE
from policies.durations import PolicyDuration, parse_duration
from policies.fillers import LANGUAGES
from policies.model import Channel, ContactRole
from policies.templates import Template, parse_template

WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Language = Literal["en", "de", "sv"]
assert frozenset(Language.__args__) == LANGUAGES  # type: ignore[attr-defined]


def _template(value: Any) -> Template:
    if isinstance(value, Template):
        return value
    if not isinstance(value, str):
        raise ValueError("expected a text template (a string)")  # noqa: TRY004 pydantic needs ValueError
    return parse_template(value)


TemplateText = Annotated[
    Template,
    BeforeValidator(_template),
    PlainSerializer(lambda t: t.source, return_type=str),
    WithJsonSchema({"type": "string", "description": "text with {named} fields; see docs/policies.md"}),
]


class Strict(BaseModel):
    # allow_inf_nan=False: "nan" or "1e400" as text is refused, as .nan and .inf are by the YAML reader
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


# Bounds on numbers: far beyond any sensible policy, small enough that no date or count arithmetic overflows.
MAX_COUNT = 1000  # touches, tasks
MAX_AMOUNT = MAX_MAGNITUDE  # deal amounts and scores: the range CRM values are held to (policies.bounds)


# --------------------------------------------------------------------------------------------------
# Calendar
# --------------------------------------------------------------------------------------------------


class WorkingHoursSettings(Strict):
    start: time = time(9, 0)
    end: time = time(17, 0)
    days: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")

    @field_validator("end")
    @classmethod
    def _after_start(cls, end: time, info: Any) -> time:
        start = info.data.get("start")
        if start is not None and end <= start:
            raise ValueError(f"working hours end ({end:%H:%M}) must be after they start ({start:%H:%M})")
        return end

    @field_validator("days")
    @classmethod
    def _some_days(cls, days: tuple[str, ...]) -> tuple[str, ...]:
        if not days:
            raise ValueError("at least one working day is needed")
        if len(set(days)) != len(days):
            raise ValueError("a working day is listed twice")
        return days

    @property
    def weekday_numbers(self) -> frozenset[int]:
        return frozenset(WEEKDAY_NAMES.index(d) for d in self.days)


class HolidaySettings(Strict):
    country: str = Field(description="ISO 3166-1 alpha-2 code, e.g. DE, SE, US, GB")
    subdivision: str | None = Field(default=None, description="state/region code, e.g. BY, CA")

    @field_validator("country")
    @classmethod
    def _known_country(cls, country: str) -> str:
        if country not in holidays.list_supported_countries():
            raise ValueError(f"unknown holiday country {country!r}: use an ISO code such as DE, SE, US, GB")
        return country

    @field_validator("subdivision")
    @classmethod
    def _known_subdivision(cls, subdivision: str | None, info: Any) -> str | None:
        country = info.data.get("country")
        if subdivision is None or country is None:
            return subdivision
        known = holidays.list_supported_countries()[country]
        if subdivision not in known:
            listed = ", ".join(known) if known else "none"
            raise ValueError(f"unknown subdivision {subdivision!r} of {country}; known: {listed}")
        return subdivision


class CalendarSettings(Strict):
    time_zone: str = Field(default="UTC", description="IANA zone used when an owner has none")
    working_hours: WorkingHoursSettings = WorkingHoursSettings()
    holidays: HolidaySettings | None = None
    company_days_off: tuple[date, ...] = ()
    due_time: time | None = Field(
        default=None, description="if set, tasks without a customer-agreed time fall due at this local time"
    )

    _known_zone = field_validator("time_zone")(check_time_zone)


# --------------------------------------------------------------------------------------------------
# Rules (the part that scoped overrides may change)
# --------------------------------------------------------------------------------------------------


class AgreedIntervalRule(Strict):
    """(a) Follow up when the customer asked to, by the channel they asked for; else on the stage cadence."""

    enabled: bool = True
    default_cadence: PolicyDuration = parse_duration("7d")
    cadence_by_stage: dict[str, PolicyDuration] = Field(default_factory=dict)
    default_channel: Channel = Channel.CALL


class NextStepRule(Strict):
    """(b) An open deal needs a next step: what, why and a date in the future."""

    enabled: bool = True
    min_length: int = Field(default=12, ge=1, le=200)
    languages: tuple[Language, ...] = ("en", "de", "sv")
    extra_fillers: tuple[str, ...] = ()
    require_why: bool = True
    grace: PolicyDuration = parse_duration("5 business days")
    escalate: Literal["none", "stop", "nurture"] = "none"


class StopReasons(Strict):
    unanswered_touches: str = "No response after repeated outreach"
    no_inbound: str = "No contact from the customer for too long"
    stage_age: str = "Stalled in stage"
    close_date_passed: str = "Close date passed long ago"
    unqualified: str = "Not qualified in time"
    no_next_step: str = "No next step agreed"


class StopRule(Strict):
    """(c) When a deal is dead: too many unanswered touches, silence, a stalled stage, a stale close date."""

    enabled: bool = True
    max_unanswered_touches: int | None = Field(default=6, ge=1, le=MAX_COUNT)
    max_since_inbound: PolicyDuration | None = parse_duration("90d")
    max_in_stage: PolicyDuration | None = None
    close_date_overdue: PolicyDuration | None = parse_duration("30d")
    qualified_deals: Literal["close_lost", "nurture"] = "close_lost"
    reasons: StopReasons = StopReasons()


SignalKind = Literal["reply", "meeting_booked", "meeting_held", "inbound_call", "connected_call"]


class NurtureRule(Strict):
    """(d) Qualified but not ready: park the contacts in a nurture list; wake up on an inbound signal.

    Off by default because it needs a list (HubSpot) or campaign (Salesforce) that ``followup setup`` creates.
    """

    enabled: bool = False
    list: str | None = Field(default=None, description="HubSpot list name or Salesforce campaign name")
    on_not_now: bool = True
    move_stage: bool = False
    move_stage_back: bool = False
    reactivate_on: tuple[SignalKind, ...] = ("reply", "meeting_booked", "inbound_call")
    close_rep_tasks: bool = Field(
        default=False,
        description="Also close the deal owner's own open follow-up tasks (call, email, to-do) on the deal, "
        "with the reason written on them; other people's tasks are never touched",
    )


class QualificationRule(Strict):
    """(e) Unqualified deals get one 'qualify or disqualify' task and nothing else."""

    enabled: bool = True
    required_fields: tuple[str, ...] = ()
    min_score: float | None = Field(default=None, ge=-MAX_AMOUNT, le=MAX_AMOUNT)
    stop_after: PolicyDuration | None = parse_duration("30d")


class DecisionMakerRule(Strict):
    """(f) Late-stage or large deals need a decision maker among their contacts."""

    enabled: bool = True
    stages: tuple[str, ...] = ()
    min_amount: float | None = Field(default=None, ge=0, le=MAX_AMOUNT)
    roles: tuple[ContactRole, ...] = (ContactRole.DECISION_MAKER, ContactRole.ECONOMIC_BUYER)


class SignalsRule(Strict):
    """(g) A reply, meeting or connected call supersedes the open follow-up task."""

    enabled: bool = True
    on_signal: Literal["close", "move"] = "close"


class RuleSet(Strict):
    """Every rule's settings for one scope. All fields have defaults, so an override lists only changes."""

    agreed_interval: AgreedIntervalRule = AgreedIntervalRule()
    next_step: NextStepRule = NextStepRule()
    stop: StopRule = StopRule()
    nurture: NurtureRule = NurtureRule()
    qualification: QualificationRule = QualificationRule()
    decision_maker: DecisionMakerRule = DecisionMakerRule()
    signals: SignalsRule = SignalsRule()
    task_expiry: PolicyDuration | None = Field(
        default=parse_duration("14d"), description="(h) close auto-tasks nobody acted on this long after due"
    )


# --------------------------------------------------------------------------------------------------
# Scopes, stages, texts, budgets: the file
# --------------------------------------------------------------------------------------------------


class AmountBand(Strict):
    min: float | None = Field(default=None, ge=0, le=MAX_AMOUNT)
    max: float | None = Field(default=None, ge=0, le=MAX_AMOUNT)

    @field_validator("max")
    @classmethod
    def _ordered(cls, high: float | None, info: Any) -> float | None:
        low = info.data.get("min")
        if high is not None and low is not None and high <= low:
            raise ValueError(f"amount band max ({high:g}) must be above min ({low:g})")
        return high


class Scope(Strict):
    """Which deals an override applies to: all listed conditions must hold (empty lists match all)."""

    pipelines: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    amount: AmountBand | None = None


class Override(Strict):
    name: str = Field(min_length=1)
    when: Scope
    rules: RuleSet


class StageMoves(Strict):
    """Where the engine moves deals of one pipeline."""

    lost: str | None = Field(default=None, description="a closed-lost stage id")
    nurture: str | None = Field(default=None, description="stage for nurtured deals (nurture.move_stage)")
    reactivate: str | None = Field(
        default=None, description="stage on reactivation (nurture.move_stage_back)"
    )


class TaskText(Strict):
    subject: TemplateText
    body: TemplateText

    @cached_property
    def fields(self) -> frozenset[str]:
        """The named fields subject and body use (the engine fills in only those)."""
        return self.subject.fields | self.body.fields


def _text(subject: str, body: str) -> TaskText:
    return TaskText(subject=parse_template(subject), body=parse_template(body))


class Texts(Strict):
    """What the rep reads in the CRM. Fields are listed in docs/policies.md; evidence is appended."""

    agreed_followup: TaskText = _text(
        "Follow-up {agreed_channel} with {contact} ({deal_name}), as agreed",
        "{contact} asked to be contacted by {agreed_channel} {agreed_interval} after the last "
        "conversation ({last_touch}). This is that follow-up.",
    )
    cadence_followup: TaskText = _text(
        "Follow up with {contact} ({deal_name})",
        "Time to follow up on {deal_name}: the last conversation was {last_touch}. When you reach "
        "{contact}, agree when and how to talk next, and record it as the agreed interval and channel.",
    )
    next_step: TaskText = _text(
        "Agree the next step for {deal_name}: what, why, when",
        "The next step of {deal_name} is missing or unclear ({missing}). Agree with {contact} what "
        "happens next, why it matters to them, and when; then record it on the deal.",
    )
    qualify: TaskText = _text(
        "Qualify or disqualify {deal_name}",
        "{deal_name} is not qualified yet ({missing}). Find out whether there is a real need, budget "
        "and timing; then fill in the qualification fields or close the deal as lost.",
    )
    decision_maker: TaskText = _text(
        "Reach the decision maker for {deal_name}",
        "{deal_name} ({amount}, {stage}) has no contact in a decision-making role ({roles}). Ask "
        "{contact} who signs off and get an introduction; then add that contact with their role.",
    )
    reactivate: TaskText = _text(
        "{contact} is back: reactivate {deal_name}",
        "{deal_name} was in nurture. {contact} sent a signal ({signal}). Reply personally and find out "
        "what changed.",
    )


class TaskSettings(Strict):
    """How the rules' requests reach the rep as tasks."""

    combine: bool = Field(
        default=True,
        description=(
            "one task per deal for everything that needs the same conversation with the customer "
            "(follow-up, next step, decision maker, reactivation), as a checklist; false: one task per rule"
        ),
    )


class Budgets(Strict):
    """(h) Budgets across deals, applied by the planner."""

    max_new_tasks_per_owner_per_day: int = Field(default=20, ge=1, le=MAX_COUNT)
    max_touches_per_contact_per_week: int | None = Field(default=3, ge=1, le=MAX_COUNT)


class Rollout(Strict):
    """Canary enforcement: the policy is enforced for these deals only; every other deal runs in shadow.

    A deal is enforced when its owner, its owner's team or its pipeline is named, or when it falls in the
    ``percent`` of deals chosen by a stable hash of the account and the deal id (``policies.rollout``).
    """

    owners: tuple[str, ...] = Field(default=(), description="owner ids (as in the CRM) to enforce for")
    teams: tuple[str, ...] = Field(default=(), description="team names (the CRM's owner teams)")
    pipelines: tuple[str, ...] = Field(default=(), description="pipeline ids")
    percent: float = Field(
        default=0,
        ge=0,
        le=100,
        description="share of all deals, chosen by a hash of account and deal id (a deal keeps its cohort)",
    )

    @model_validator(mode="after")
    def _something_enforced(self) -> Rollout:
        if not self.model_fields_set:
            raise ValueError("name owners, teams, pipelines or a percent to enforce for")
        return self


class PolicyFile(Strict):
    """One YAML file. In a folder, each section may appear in one file only; overrides add up."""

    version: Literal[1] = 1
    mode: Literal["enforce", "shadow"] | None = None
    rollout: Rollout | None = Field(
        default=None, description="enforce for some owners, teams, pipelines or a percent; shadow elsewhere"
    )
    calendar: CalendarSettings | None = None
    stages: dict[str, StageMoves] | None = Field(default=None, description="by pipeline id")
    defaults: RuleSet | None = None
    overrides: tuple[Override, ...] = ()
    texts: Texts | None = None
    tasks: TaskSettings | None = None
    budgets: Budgets | None = None


SINGLE_SECTIONS = ("mode", "calendar", "stages", "defaults", "texts", "tasks", "budgets", "rollout")
