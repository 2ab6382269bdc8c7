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

import marshal
from array import array
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
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
    Direction,
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
_TOUCH_KINDS = frozenset({ActivityKind.CALL, ActivityKind.EMAIL, ActivityKind.MEETING})
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

# -- compact storage -------------------------------------------------------------------------------------
# A timeline keeps its deal's recorded changes and activities in arrays rather than as one object per row
# (the snapshot's FieldChange and Activity objects): a moment is an integer of microseconds since the epoch,
# a field name a small code, an activity's kind, direction, outcome and origin one code. Values are kept as
# they are, dates and numbers shared between deals (``_shared``). Rows are materialised when asked for
# (``activities_at``, ``value_changes``): about a quarter of the memory, for a few object creations per
# reconstruction.

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_FIELD_NAMES: list[str] = []
_FIELD_CODES: dict[str, int] = {}
_KINDS = tuple(ActivityKind)
_DIRECTIONS = tuple(Direction)
_OUTCOMES = tuple(Outcome)
_KIND_INDEX = {k: i for i, k in enumerate(_KINDS)}
_DIRECTION_INDEX = {d: i for i, d in enumerate(_DIRECTIONS)}
_OUTCOME_INDEX = {o: i for i, o in enumerate(_OUTCOMES)}
_SHARED: dict[Any, Any] = {}  # equal dates and numbers of all timelines, as one object each


def micros(moment: datetime) -> int:
    """A moment as the timelines keep it: microseconds since the epoch."""
    return (moment - _EPOCH) // _MICROSECOND


_us = micros


_FAST_US = 4_000_000_000_000_000  # up to 2096 a float of seconds converts back to the exact microsecond


def _from_us(us: int) -> datetime:
    if 0 <= us < _FAST_US:
        return datetime.fromtimestamp(us / 1_000_000, UTC)  # twice as fast as the exact form below
    return _EPOCH + timedelta(microseconds=us)


from_micros = _from_us  # a moment kept as ``micros`` gives, back as a datetime in UTC


def _field_code(name: str) -> int:
    code = _FIELD_CODES.get(name)
    if code is None:
        code = _FIELD_CODES[name] = len(_FIELD_NAMES)
        _FIELD_NAMES.append(name)
    return code


def _shared(value: FieldValue) -> FieldValue:
    """One object for equal dates and numbers across timelines (texts are usually shared already)."""
    if isinstance(value, date | float | int) and not isinstance(value, bool):
        key = (type(value), value)
        found = _SHARED.get(key)
        if found is None:
            if len(_SHARED) >= 1 << 20:
                return value
            found = _SHARED[key] = value
        return found
    return value


def _activity_code(activity: Activity) -> int:
    code = _KIND_INDEX[activity.kind] * len(_DIRECTIONS) + _DIRECTION_INDEX[activity.direction]
    return (code * len(_OUTCOMES) + _OUTCOME_INDEX[activity.outcome]) * 2 + activity.created_by_followup


def _decoded(code: int) -> tuple[ActivityKind, Direction, Outcome, bool]:
    code, followup = divmod(code, 2)
    code, outcome = divmod(code, len(_OUTCOMES))
    kind, direction = divmod(code, len(_DIRECTIONS))
    return _KINDS[kind], _DIRECTIONS[direction], _OUTCOMES[outcome], bool(followup)


_DECODED = [_decoded(code) for code in range(len(_KINDS) * len(_DIRECTIONS) * len(_OUTCOMES) * 2)]


class SegmentCache:
    """The most recently used stretches of all timelines of one replay (a bounded cache: rebuilding a
    stretch is cheap, keeping one for each of 100,000 deals is not)."""

    __slots__ = ("_capacity", "_segments")

    def __init__(self, capacity: int = 16_384) -> None:
        self._capacity = capacity
        self._segments: OrderedDict[DealTimeline, _Segment] = OrderedDict()

    def get(self, timeline: DealTimeline, index: int) -> _Segment | None:
        found = self._segments.get(timeline)
        if found is None or found.index != index:
            return None
        self._segments.move_to_end(timeline)
        return found

    def latest(self, timeline: DealTimeline) -> _Segment | None:
        """The timeline's segment kept last, whatever its stretch (its activities can be reused)."""
        return self._segments.get(timeline)

    def put(self, timeline: DealTimeline, segment: _Segment) -> None:
        self._segments[timeline] = segment
        self._segments.move_to_end(timeline)
        if len(self._segments) > self._capacity:
            self._segments.popitem(last=False)


@dataclass(frozen=True, slots=True)
class _Packed:
    """A timeline's ``_packed`` part, read back."""

    ids: tuple[str, ...]
    contacts: tuple[tuple[str, ...], ...]
    contact_changes: Mapping[str, list[tuple[int, tuple[str, ...] | None]]]


_NOTHING_PACKED = _Packed((), (), {})


class DealTimeline:
    """One deal's history, indexed for reconstruction at any moment (see the module docstring).

    ``deal`` is the deal as the snapshot has it, without its activities (``activities()`` gives them; the
    timeline keeps them compactly). The recorded part of a deal only changes at its event times; the
    values of the stretch between two of them are worked out once and kept (in the shared
    ``SegmentCache``) for the next reconstruction in the same stretch.
    """

    __slots__ = (
        "_a_codes",
        "_a_times",
        "_cache",
        "_early",
        "_fields",
        "_packed",
        "_times",
        "_values",
        "deal",
        "event_us",
        "logged_at",
        "stages",
    )

    def __init__(
        self,
        deal: Deal,
        history: DealHistory | None,
        stages: StageBook,
        cache: SegmentCache | None = None,
    ) -> None:
        self.deal = replace(deal, activities=()) if deal.activities else deal
        self.stages = stages
        self._cache = cache if cache is not None else SegmentCache(1)
        stages.add(deal.stage)
        history = history or _NO_HISTORY
        # The changes in time order (equal moments keep their order): found by bisection, read by scanning
        # (a deal has tens of them).
        ordered = sorted(history.changes, key=_change_time)
        self._times = array("q", [_us(c.at) for c in ordered])
        self._fields = array("H", [_field_code(c.field) for c in ordered])
        self._values: tuple[FieldValue, ...] = tuple(_shared(c.value) for c in ordered)
        contact_changes: dict[str, list[tuple[int, tuple[str, ...] | None]]] = {}
        for contact_change in sorted(history.contacts, key=_change_time):
            rows = contact_changes.setdefault(contact_change.contact_id, [])
            roles = contact_change.roles
            rows.append((_us(contact_change.at), None if roles is None else tuple(r.value for r in roles)))
        activities = deal.activities
        self._a_times = array("q", [_us(a.occurred_at) for a in activities])
        self._a_codes = array("H", [_activity_code(a) for a in activities])
        # The activities' ids and contacts and the contacts' role changes, read when a deal is rebuilt: one
        # bytes object (marshal) instead of a string and a tuple per activity and a list per contact.
        packed = (
            tuple(a.id for a in activities),
            tuple(tuple(a.contact_ids) for a in activities),
            contact_changes,
        )
        self._packed = marshal.dumps(packed) if activities or contact_changes else b""
        # Activities are visible from when they were logged (here: only those not logged when they happened).
        logged = {a.id: history.logged_at[a.id] for a in activities if a.id in history.logged_at}
        self.logged_at: Mapping[str, datetime] = logged or _EMPTY
        early = {
            a.id: Activity(a.id, a.kind, a.direction, a.occurred_at, Outcome.SCHEDULED, a.contact_ids)
            for a in activities
            if a.kind is ActivityKind.MEETING and a.id in logged and logged[a.id] < a.occurred_at
        }
        self._early: Mapping[str, Activity] = early or _EMPTY
        events: set[int] = {_us(deal.created_at)}
        if deal.stage_entered_at is not None:
            events.add(_us(deal.stage_entered_at))  # without a stage history, the stage is entered then
        events.update(self._times)
        events.update(at for rows in contact_changes.values() for at, _ in rows)
        for activity, at in zip(activities, self._a_times, strict=True):
            events.add(_us(logged[activity.id]) if activity.id in logged else at)
            if activity.id in early:
                events.add(at)  # the booked meeting takes place: its outcome shows
        self.event_us = array("q", sorted(events))

    # -- events and activities ---------------------------------------------------------------------

    @property
    def event_times(self) -> tuple[datetime, ...]:
        """The moments something happened to the deal (``event_us`` as datetimes), in order."""
        return tuple(_from_us(us) for us in self.event_us)

    @property
    def last_event(self) -> datetime:
        return _from_us(self.event_us[-1])

    def _unpacked(self) -> _Packed:
        """The activities' ids and contacts, and the contacts' role changes (``_packed``)."""
        if not self._packed:
            return _NOTHING_PACKED
        ids, contacts, changes = marshal.loads(self._packed)  # noqa: S302 (bytes this timeline made)
        return _Packed(ids, contacts, changes)

    def _activity(self, index: int, packed: _Packed) -> Activity:
        kind, direction, outcome, followup = _DECODED[self._a_codes[index]]
        return Activity(
            packed.ids[index],
            kind,
            direction,
            _from_us(self._a_times[index]),
            outcome,
            packed.contacts[index],
            followup,
        )

    def activities(self) -> tuple[Activity, ...]:
        """Every activity of the deal, in time order, as the snapshot has them."""
        packed = self._unpacked()
        return tuple(self._activity(i, packed) for i in range(len(self._a_times)))

    def contacts_touched(self) -> set[str]:
        """The contacts any of the deal's activities involve."""
        return {c for contact_ids in self._unpacked().contacts for c in contact_ids}

    def outbound_touches(
        self, contact_id: str, start: datetime, end: datetime, now: datetime
    ) -> dict[str, datetime]:
        """The deal's outbound calls, e-mails and meetings with ``contact_id`` in ``(start, end]`` that are
        visible at ``now`` (logged by then), by activity id."""
        low, high, visible = _us(start), _us(end), _us(now)
        logged = self.logged_at
        found: dict[str, datetime] = {}
        first = bisect_right(self._a_times, low)
        last = bisect_right(self._a_times, high)
        packed = self._unpacked() if first < last else _NOTHING_PACKED
        for index in range(first, last):
            kind, direction, _, _ = _DECODED[self._a_codes[index]]
            if direction is not Direction.OUTBOUND or kind not in _TOUCH_KINDS:
                continue
            if contact_id not in packed.contacts[index]:
                continue
            activity_id = packed.ids[index]
            at = self._a_times[index]
            if activity_id in logged:
                if _us(logged[activity_id]) > visible:
                    continue
            elif at > visible:
                continue
            found[activity_id] = _from_us(at)
        return found

    # -- one field ---------------------------------------------------------------------------------

    def _last(self, name: str, t: datetime) -> int | None:
        """The index of ``name``'s latest change at or before ``t``."""
        code = _FIELD_CODES.get(name)
        if code is None:
            return None
        fields = self._fields
        for index in range(bisect_right(self._times, _us(t)) - 1, -1, -1):
            if fields[index] == code:
                return index
        return None

    def changed_at(self, name: str, t: datetime) -> datetime | None:
        """When ``name`` last changed at or before ``t`` (``None``: no recorded change by then)."""
        found = self._last(name, t)
        return _from_us(self._times[found]) if found is not None else None

    def value(self, name: str, t: datetime) -> tuple[bool, FieldValue]:
        """(recorded, value) of ``name`` at ``t``; ``recorded`` is False for a field without changes."""
        found = self._last(name, t)
        if found is not None:
            return True, self._values[found]
        code = _FIELD_CODES.get(name)
        if code is None or code not in self._fields:
            return False, None
        first = self._fields.index(code)
        return True, self._values[first] if name in _STAGE_FIELDS else None

    def value_changes(self, name: str) -> list[tuple[datetime, FieldValue]]:
        """Every recorded change of ``name``, oldest first."""
        code = _FIELD_CODES.get(name)
        return [
            (_from_us(at), value)
            for at, field, value in zip(self._times, self._fields, self._values, strict=True)
            if field == code
        ]

    # -- the whole deal ----------------------------------------------------------------------------

    def _recorded(self, t: datetime) -> _Segment:
        """The recorded values at ``t`` (kept for the stretch up to the next event)."""
        at = _us(t)
        index = bisect_right(self.event_us, at)
        segment = self._cache.get(self, index)
        if segment is not None:
            return segment
        values: dict[str, FieldValue] = {}
        modified = self.deal.created_at
        modified_us = _us(modified)
        entered = None
        times, fields, stored = self._times, self._fields, self._values
        seen = bisect_right(times, at)
        stage = _FIELD_CODES.get(HistoryField.STAGE)
        for position in range(seen):
            name = _FIELD_NAMES[fields[position]]
            values[name] = stored[position]
            if times[position] > modified_us:
                modified_us = times[position]
                modified = _from_us(modified_us)
            if fields[position] == stage:
                entered = times[position]
        for position in range(
            seen, len(times)
        ):  # fields that only get their first value later: empty until then
            name = _FIELD_NAMES[fields[position]]
            if name not in values:
                values[name] = stored[position] if name in _STAGE_FIELDS else None
        segment = _Segment(
            index, values, modified, _from_us(entered) if entered is not None else None, self._shown(t)
        )
        self._cache.put(self, segment)
        return segment

    def _shown(self, t: datetime) -> tuple[Activity, ...]:
        """``activities_at(t)``, reusing the activities of the segment kept last when they are the first
        ones of these (activities logged when they happened, visible in time order)."""
        if self.logged_at:
            return self.activities_at(t)
        count = bisect_right(self._a_times, _us(t))
        latest = self._cache.latest(self)
        if latest is not None and len(latest.activities) <= count:
            kept = latest.activities
            if count == len(kept):
                return kept
            packed = self._unpacked()
            return kept + tuple(self._activity(i, packed) for i in range(len(kept), count))
        packed = self._unpacked() if count else _NOTHING_PACKED
        return tuple(self._activity(i, packed) for i in range(count))

    def activities_at(self, t: datetime) -> tuple[Activity, ...]:
        logged = self.logged_at
        packed = self._unpacked()
        if not logged:
            return tuple(self._activity(i, packed) for i in range(bisect_right(self._a_times, _us(t))))
        at = _us(t)
        early = self._early
        shown = []
        for index, activity_id in enumerate(packed.ids):
            when = self._a_times[index]
            if (_us(logged[activity_id]) if activity_id in logged else when) > at:
                continue
            if activity_id in early and when > at:
                shown.append(early[activity_id])  # booked, not yet held
            else:
                shown.append(self._activity(index, packed))
        return tuple(shown)

    def contacts_at(self, t: datetime) -> tuple[Contact, ...]:
        changes = self._unpacked().contact_changes
        if not changes:
            return self.deal.contacts
        at = _us(t)
        shown = []
        for contact in self.deal.contacts:
            rows = changes.get(contact.id)
            if not rows:
                shown.append(contact)
                continue
            current = [roles for moment, roles in rows if moment <= at]
            if not current:
                continue  # not on the deal yet
            roles = current[-1]
            if roles is not None:
                wanted = frozenset(ContactRole(r) for r in roles)
                if wanted != contact.roles:
                    contact = replace(contact, roles=wanted)
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


_NO_HISTORY = DealHistory()


def timelines(
    deals: Sequence[Deal], pipelines: Iterable[Pipeline], history: SnapshotHistory | None
) -> tuple[list[DealTimeline], StageBook]:
    """A timeline per deal (same order), sharing one stage book and one segment cache."""
    builder = TimelineBuilder(pipelines)
    histories = history.deals if history is not None else {}
    return [builder.add(deal, histories.get(deal.id)) for deal in deals], builder.book


class TimelineBuilder:
    """Timelines made one deal at a time (a large snapshot can be read in parts and let go as it goes),
    sharing one stage book and one segment cache."""

    def __init__(self, pipelines: Iterable[Pipeline], cache: SegmentCache | None = None) -> None:
        self.book = StageBook(pipelines)
        self.cache = cache or SegmentCache()

    def add(self, deal: Deal, history: DealHistory | None) -> DealTimeline:
        return DealTimeline(deal, history, self.book, self.cache)


def deal_as_of(timeline: DealTimeline, t: datetime) -> Deal:
    """The deal as the CRM showed it at ``t`` (see the module docstring for how each part is rebuilt)."""
    return timeline.as_of(t)
