"""A deal's history: how its fields, contacts and activities looked at any moment, for the backtest.

A snapshot (``policies.codec.Snapshot``) holds every deal as it is when the snapshot was taken. Its optional
``history`` says how each deal got there, as CRM-neutral records a connector fills from the CRM's own field
history (HubSpot ``propertiesWithHistory``; Salesforce ``OpportunityHistory`` and
``OpportunityFieldHistory``; see docs/backtest.md for the mapping):

    FieldChange(at, field, value)      from ``at`` on, ``field`` held ``value`` (``None``: empty)
    ContactChange(at, contact_id, roles)   from ``at`` on, the contact was on the deal (with these roles)
    DealHistory.logged_at[activity id] when an activity was logged, if not when it happened (a meeting
                                       booked ahead, a call logged a day late)

What a connector must give, per tracked field: **every value the field took and the moment it took it,
including the value it had when the deal was created** (HubSpot's history lists it as the first version;
Salesforce gives it as the first change's ``OldValue``, or ``OpportunityHistory``'s first row). Field names
are ``HistoryField`` values (stage, pipeline, amount, close date, owner and the canonical ``DealField``
names) or, for the policy's extra fields, the CRM field name as in ``Deal.fields``.

How a deal is reconstructed at ``t`` (``deal_as_of``), field by field:

* a field with recorded changes holds the value of its latest change at or before ``t``; before its first
  change it was empty (stage and pipeline: their first recorded value, a deal always has a stage);
* a field without any recorded change held its current value throughout: exact when the CRM tracks the
  field (it never changed), an approximation when it does not (``SnapshotHistory.untracked`` lists those
  fields, and the backtest report flags them);
* activities are visible from when they were logged; a meeting booked ahead shows as ``scheduled`` until
  it takes place; contacts with recorded changes join the deal at their first change;
* ``stage_entered_at`` is the moment of the latest stage change at or before ``t``.

Pure: no I/O, no clock. ``DealTimeline`` indexes one deal's history once, so that reconstructing it at
many moments costs a few bisections each.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from policies.model import (
    Activity,
    ActivityKind,
    Agreement,
    AutoTask,
    Channel,
    Contact,
    ContactRole,
    Deal,
    DealField,
    FieldValue,
    FollowupState,
    NextStep,
    Outcome,
    Pipeline,
    Readiness,
    Stage,
)


class HistoryField(StrEnum):
    """Deal attributes with a history beyond the canonical ``DealField`` names."""

    STAGE = "stage"  # the stage id within the pipeline
    PIPELINE = "pipeline"
    AMOUNT = "amount"
    CLOSE_DATE = "close_date"
    OWNER = "owner"  # the owner id


# crm-followup's own fields: the backtest replaces them by the policy's simulated state.
OWN_FIELDS = frozenset({DealField.FOLLOWUP_STATE, DealField.FOLLOWUP_STATE_SINCE, DealField.FOLLOWUP_REASON})


def _text(value: FieldValue) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"expected text, not {value!r}")  # noqa: TRY004 pydantic reports ValueError
    return str(value)


def _required_text(value: FieldValue) -> str:
    text = _text(value)
    if not text:
        raise ValueError("must not be empty")
    return text


def _number(value: FieldValue) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"expected a number, not {value!r}")  # noqa: TRY004
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"expected a number, not {value!r}") from None


def _whole(value: FieldValue) -> int | None:
    number = _number(value)
    if number is None:
        return None
    if not number.is_integer():
        raise ValueError(f"expected a whole number of days, not {value!r}")
    return int(number)


def _day(value: FieldValue) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).date() if "T" in value else date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"expected a date such as 2026-03-04, not {value!r}")


def _moment(value: FieldValue) -> datetime | None:
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
    if moment is None or moment.tzinfo is None:
        raise ValueError(f"expected a date-time with a time zone such as 2026-03-04T10:00:00Z, not {value!r}")
    return moment


def _choice(kind: type[StrEnum]) -> Any:
    names = ", ".join(m.value for m in kind)

    def check(value: FieldValue) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str) or value not in {m.value for m in kind}:
            raise ValueError(f"expected one of {names}, not {value!r}")
        return value

    return check


# field -> how a recorded value becomes the deal's value (raises ValueError naming what is expected)
_NORMALISE: Mapping[str, Any] = {
    HistoryField.STAGE: _required_text,
    HistoryField.PIPELINE: _required_text,
    HistoryField.AMOUNT: _number,
    HistoryField.CLOSE_DATE: _day,
    HistoryField.OWNER: _text,
    DealField.NEXT_STEP: _text,
    DealField.NEXT_STEP_WHY: _text,
    DealField.NEXT_STEP_DATE: _day,
    DealField.AGREED_INTERVAL_DAYS: _whole,
    DealField.AGREED_CHANNEL: _choice(Channel),
    DealField.READINESS: _choice(Readiness),
    DealField.QUALIFICATION_SCORE: _number,
    DealField.FOLLOWUP_STATE: _choice(FollowupState),
    DealField.FOLLOWUP_STATE_SINCE: _moment,
    DealField.FOLLOWUP_REASON: _text,
    DealField.CLOSE_REASON: _text,
}
CANONICAL_FIELDS = frozenset(_NORMALISE)


def _aware(moment: datetime, what: str) -> None:
    if moment.tzinfo is None:
        raise ValueError(f"{what}: a time zone is needed, e.g. 2026-03-04T10:00:00Z")


@dataclass(frozen=True, slots=True)
class FieldChange:
    """From ``at`` on, ``field`` held ``value`` (``None``: empty). Values of canonical fields are normalised
    to the deal's types (numbers, dates, choices); other fields keep the value as given."""

    at: datetime
    field: str
    value: FieldValue = None

    def __post_init__(self) -> None:
        _aware(self.at, "at")
        normalise = _NORMALISE.get(self.field)
        if normalise is not None:
            object.__setattr__(self, "value", normalise(self.value))


@dataclass(frozen=True, slots=True)
class ContactChange:
    """From ``at`` on, the contact was on the deal, with ``roles`` (``None``: its current roles)."""

    at: datetime
    contact_id: str
    roles: tuple[ContactRole, ...] | None = None

    def __post_init__(self) -> None:
        _aware(self.at, "at")


@dataclass(frozen=True, slots=True)
class DealHistory:
    """One deal's recorded changes, in any order (they are ordered by time when used)."""

    changes: tuple[FieldChange, ...] = ()
    contacts: tuple[ContactChange, ...] = ()
    logged_at: Mapping[str, datetime] = field(default_factory=dict)  # activity id -> when it was logged


@dataclass(frozen=True, slots=True)
class SnapshotHistory:
    """The histories of a snapshot's deals, and what they cover.

    ``since``: the earliest moment the history reaches (Salesforce keeps field history for a limited time;
    ``None``: since each deal's creation). ``untracked``: fields whose history the CRM does not keep; the
    backtest uses their current value throughout and says so.
    """

    deals: Mapping[str, DealHistory] = field(default_factory=dict)
    since: datetime | None = None
    untracked: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.since is not None:
            _aware(self.since, "since")


def history_problems(
    deals: Sequence[Deal], history: SnapshotHistory
) -> Iterator[tuple[tuple[str, ...], str]]:
    """Histories that cannot belong to the snapshot: each with its JSON path and a message."""
    known = {deal.id for deal in deals}
    for deal_id in history.deals:
        if deal_id not in known:
            yield ("history", "deals", deal_id), f"no deal {deal_id!r} in the snapshot's deals"
    for name in history.untracked:
        if not name:
            yield ("history", "untracked"), "a field name must not be empty"


# --------------------------------------------------------------------------------------------------
# Reconstruction
# --------------------------------------------------------------------------------------------------


_STAGE_FIELDS = frozenset({HistoryField.STAGE, HistoryField.PIPELINE})
_STEP_FIELDS = frozenset({DealField.NEXT_STEP, DealField.NEXT_STEP_WHY, DealField.NEXT_STEP_DATE})
_KEPT_IN_FIELDS = frozenset({DealField.CLOSE_REASON, DealField.FOLLOWUP_REASON})  # Deal.fields, by name


class StageBook:
    """Stages by (pipeline id, stage id), from a snapshot's pipelines; unknown ids become open stages."""

    __slots__ = ("_stages", "unknown")

    def __init__(self, pipelines: Iterable[Pipeline]) -> None:
        self._stages: dict[tuple[str, str], Stage] = {(p.id, s.id): s for p in pipelines for s in p.stages}
        self.unknown: set[tuple[str, str]] = set()  # (pipeline, stage) ids met in a history, not in pipelines

    def add(self, stage: Stage) -> None:
        self._stages.setdefault((stage.pipeline_id, stage.id), stage)

    def get(self, pipeline_id: str, stage_id: str) -> Stage:
        found = self._stages.get((pipeline_id, stage_id))
        if found is None:
            self.unknown.add((pipeline_id, stage_id))
            found = Stage(stage_id, stage_id, pipeline_id)
            self._stages[(pipeline_id, stage_id)] = found
        return found


Overlay = Mapping[str, tuple[datetime, FieldValue]]  # field -> (when the policy wrote it, the value)
_EMPTY: Mapping[str, Any] = MappingProxyType({})  # shared by the many deals without such entries


class DealTimeline:
    """One deal's history, indexed for reconstruction at any moment (see the module docstring).

    The recorded part of a deal only changes at its ``event_times``; the values of the stretch between two
    of them are worked out once and kept for the next reconstruction in the same stretch (the replay
    evaluates a deal several times between two changes).
    """

    __slots__ = (
        "_changes",
        "_contact_changes",
        "_early",
        "_segment",
        "deal",
        "event_times",
        "logged_at",
        "stages",
    )

    def __init__(self, deal: Deal, history: DealHistory | None, stages: StageBook) -> None:
        self.deal = deal
        self.stages = stages
        stages.add(deal.stage)
        history = history or _NO_HISTORY
        # The changes in time order (equal moments keep their order): found by bisection, read by scanning
        # (a deal has tens of them), so that nothing but this tuple is kept per deal.
        self._changes: tuple[FieldChange, ...] = tuple(sorted(history.changes, key=_change_time))
        contact_changes: dict[str, list[tuple[datetime, tuple[ContactRole, ...] | None]]] = {}
        for contact_change in sorted(history.contacts, key=_change_time):
            rows = contact_changes.setdefault(contact_change.contact_id, [])
            rows.append((contact_change.at, contact_change.roles))
        self._contact_changes = contact_changes or _EMPTY
        # Activities are visible from when they were logged (here: only those not logged when they happened).
        logged = {a.id: history.logged_at[a.id] for a in deal.activities if a.id in history.logged_at}
        self.logged_at: Mapping[str, datetime] = logged or _EMPTY
        early = {
            a.id: Activity(a.id, a.kind, a.direction, a.occurred_at, Outcome.SCHEDULED, a.contact_ids)
            for a in deal.activities
            if a.kind is ActivityKind.MEETING and a.id in logged and logged[a.id] < a.occurred_at
        }
        self._early: Mapping[str, Activity] = early or _EMPTY
        events: set[datetime] = {deal.created_at}
        if deal.stage_entered_at is not None:
            events.add(deal.stage_entered_at)  # without a stage history, the stage is entered then
        events.update(change.at for change in self._changes)
        events.update(at for rows in contact_changes.values() for at, _ in rows)
        for activity in deal.activities:
            events.add(logged.get(activity.id, activity.occurred_at))
            if activity.id in early:
                events.add(activity.occurred_at)  # the booked meeting takes place: its outcome shows
        self.event_times: tuple[datetime, ...] = tuple(sorted(events))
        self._segment: _Segment | None = None

    # -- one field ---------------------------------------------------------------------------------

    def _last(self, name: str, t: datetime) -> FieldChange | None:
        changes = self._changes
        for index in range(bisect_right(changes, t, key=_change_time) - 1, -1, -1):
            if changes[index].field == name:
                return changes[index]
        return None

    def changed_at(self, name: str, t: datetime) -> datetime | None:
        """When ``name`` last changed at or before ``t`` (``None``: no recorded change by then)."""
        found = self._last(name, t)
        return found.at if found is not None else None

    def value(self, name: str, t: datetime) -> tuple[bool, FieldValue]:
        """(recorded, value) of ``name`` at ``t``; ``recorded`` is False for a field without changes."""
        found = self._last(name, t)
        if found is not None:
            return True, found.value
        first = next((c for c in self._changes if c.field == name), None)
        if first is None:
            return False, None
        return True, first.value if name in _STAGE_FIELDS else None

    def value_changes(self, name: str) -> list[tuple[datetime, FieldValue]]:
        """Every recorded change of ``name``, oldest first."""
        return [(c.at, c.value) for c in self._changes if c.field == name]

    # -- the whole deal ----------------------------------------------------------------------------

    def _recorded(self, t: datetime) -> _Segment:
        """The recorded values at ``t`` (kept for the stretch up to the next event)."""
        index = bisect_right(self.event_times, t)
        segment = self._segment
        if segment is not None and segment.index == index:
            return segment
        values: dict[str, FieldValue] = {}
        modified = self.deal.created_at
        entered = None
        changes = self._changes
        seen = bisect_right(changes, t, key=_change_time)
        for change in changes[:seen]:
            values[change.field] = change.value
            if change.at > modified:
                modified = change.at
            if change.field == HistoryField.STAGE:
                entered = change.at
        for change in changes[seen:]:  # fields that only get their first value later: empty until then
            if change.field not in values:
                values[change.field] = change.value if change.field in _STAGE_FIELDS else None
        segment = self._segment = _Segment(index, values, modified, entered, self.activities_at(t))
        return segment

    def activities_at(self, t: datetime) -> tuple[Activity, ...]:
        activities = self.deal.activities
        logged = self.logged_at
        if not logged:
            return activities[: bisect_right(activities, t, key=_occurred_at)]
        early = self._early
        shown = []
        for activity in activities:
            if logged.get(activity.id, activity.occurred_at) > t:
                continue
            if activity.id in early and activity.occurred_at > t:
                activity = early[activity.id]  # booked, not yet held
            shown.append(activity)
        return tuple(shown)

    def contacts_at(self, t: datetime) -> tuple[Contact, ...]:
        if not self._contact_changes:
            return self.deal.contacts
        shown = []
        for contact in self.deal.contacts:
            rows = self._contact_changes.get(contact.id)
            if not rows:
                shown.append(contact)
                continue
            current = [roles for at, roles in rows if at <= t]
            if not current:
                continue  # not on the deal yet
            roles = current[-1]
            if roles is not None and frozenset(roles) != contact.roles:
                contact = replace(contact, roles=frozenset(roles))
            shown.append(contact)
        return tuple(shown)

    def as_of(
        self,
        t: datetime,
        *,
        overlay: Overlay | None = None,
        auto_tasks: tuple[AutoTask, ...] | None = None,
        own_fields: bool = True,
        light: bool = False,
    ) -> Deal:
        """The deal at ``t``; ``overlay`` (the policy's own writes) wins over a field unless a recorded change
        came later; ``own_fields`` False resets crm-followup's own fields to a fresh start (the backtest's
        simulated world keeps its own); ``auto_tasks`` replaces the deal's tasks; ``light`` leaves out
        activities and contacts (for looking at fields only)."""
        segment = self._recorded(t)
        fresh = not overlay and auto_tasks == () and not own_fields and not light
        if fresh and segment.fresh is not None:
            return segment.fresh  # the same all through the stretch
        values = segment.values
        written: dict[str, datetime] = {}
        if overlay or not own_fields:
            values = dict(values)
            for name, (at, value) in (overlay or {}).items():
                real = self.changed_at(name, t) if name not in OWN_FIELDS else None
                if at <= t and (real is None or real < at):
                    values[name] = value
                    written[name] = at
            if not own_fields:
                for name in OWN_FIELDS:
                    if name not in written:
                        values[name] = None
        if auto_tasks is None:
            auto_tasks = tuple(a for a in self.deal.auto_tasks if a.created_at <= t)
        modified = max(segment.modified, *written.values()) if written else segment.modified
        entered = written.get(HistoryField.STAGE) or segment.entered
        if entered is None:
            started = self.deal.stage_entered_at
            entered = started if started is not None and started <= t else self.deal.created_at
        if light:
            return self._build(values, modified, entered, auto_tasks, (), ())
        built = self._build(values, modified, entered, auto_tasks, self.contacts_at(t), segment.activities)
        if fresh:
            segment.fresh = built
        return built

    def _build(
        self,
        values: Mapping[str, FieldValue],
        modified: datetime,
        entered: datetime,
        auto_tasks: tuple[AutoTask, ...],
        contacts: tuple[Contact, ...],
        activities: tuple[Activity, ...],
    ) -> Deal:
        deal = self.deal
        if not values:
            pipeline_id, stage = deal.pipeline_id, deal.stage
        else:
            pipeline_id = str(values.get(HistoryField.PIPELINE, deal.pipeline_id))
            stage_id = str(values.get(HistoryField.STAGE, deal.stage.id))
            if stage_id == deal.stage.id and pipeline_id == deal.pipeline_id:
                stage = deal.stage
            else:
                stage = self.stages.get(pipeline_id, stage_id)
        step = deal.next_step
        if not _STEP_FIELDS.isdisjoint(values):
            step = NextStep(
                _opt_str(values.get(DealField.NEXT_STEP, step.what)),
                _opt_str(values.get(DealField.NEXT_STEP_WHY, step.why)),
                _plain_date(values.get(DealField.NEXT_STEP_DATE, step.when)),
            )
        agreement = deal.agreement
        if DealField.AGREED_INTERVAL_DAYS in values or DealField.AGREED_CHANNEL in values:
            interval = values.get(DealField.AGREED_INTERVAL_DAYS, agreement.interval_days)
            channel = values.get(DealField.AGREED_CHANNEL, agreement.channel)
            agreement = Agreement(
                interval if isinstance(interval, int) and not isinstance(interval, bool) else None,
                Channel(channel) if isinstance(channel, str) and channel else None,
            )
        readiness = deal.readiness
        if DealField.READINESS in values:
            raw = values[DealField.READINESS]
            readiness = Readiness(raw) if isinstance(raw, str) and raw else Readiness.UNKNOWN
        state, since = deal.followup_state, deal.followup_state_since
        if DealField.FOLLOWUP_STATE in values:
            raw = values[DealField.FOLLOWUP_STATE]
            state = FollowupState(raw) if isinstance(raw, str) and raw else FollowupState.ACTIVE
        if DealField.FOLLOWUP_STATE_SINCE in values:
            raw = values[DealField.FOLLOWUP_STATE_SINCE]
            since = raw if isinstance(raw, datetime) else None
        fields = deal.fields
        kept = [name for name in values if name not in CANONICAL_FIELDS or name in _KEPT_IN_FIELDS]
        if kept:
            fields = dict(fields)
            for name in kept:
                if values[name] is None:
                    fields.pop(str(name), None)
                else:
                    fields[str(name)] = values[name]
        return Deal(
            id=deal.id,
            name=deal.name,
            pipeline_id=pipeline_id,
            stage=stage,
            created_at=deal.created_at,
            modified_at=modified,
            owner_id=_opt_str(values.get(HistoryField.OWNER, deal.owner_id)),
            stage_entered_at=entered,
            amount=_float(values.get(HistoryField.AMOUNT, deal.amount)),
            currency=deal.currency,
            close_date=_plain_date(values.get(HistoryField.CLOSE_DATE, deal.close_date)),
            next_step=step,
            agreement=agreement,
            qualification_score=_float(values.get(DealField.QUALIFICATION_SCORE, deal.qualification_score)),
            readiness=readiness,
            followup_state=state,
            followup_state_since=since,
            fields=fields,
            contacts=contacts,
            activities=activities,
            auto_tasks=auto_tasks,
        )


@dataclass(slots=True)
class _Segment:
    """The recorded values of one stretch between two events of a deal."""

    index: int  # how many of the deal's event times lie at or before the stretch
    values: dict[str, FieldValue]
    modified: datetime
    entered: datetime | None  # the latest recorded stage change
    activities: tuple[Activity, ...]
    fresh: Deal | None = None  # the deal in this stretch as the policy first sees it (no writes, no tasks)


def _opt_str(value: FieldValue) -> str | None:
    return None if value is None else str(value)


def _float(value: FieldValue) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _plain_date(value: FieldValue) -> date | None:
    return value if isinstance(value, date) and not isinstance(value, datetime) else None


def _change_time(change: FieldChange | ContactChange) -> datetime:
    return change.at


def _occurred_at(activity: Activity) -> datetime:
    return activity.occurred_at


_NO_HISTORY = DealHistory()


def timelines(
    deals: Sequence[Deal], pipelines: Iterable[Pipeline], history: SnapshotHistory | None
) -> tuple[list[DealTimeline], StageBook]:
    """A timeline per deal (same order), sharing one stage book."""
    book = StageBook(pipelines)
    histories = history.deals if history is not None else {}
    return [DealTimeline(deal, histories.get(deal.id), book) for deal in deals], book


def deal_as_of(timeline: DealTimeline, t: datetime) -> Deal:
    """The deal as the CRM showed it at ``t`` (see the module docstring for how each part is rebuilt)."""
    return timeline.as_of(t)
