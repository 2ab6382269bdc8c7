"""What a connector reads of a deal's history: each field's values and the moments it took them.

The backtest (docs/backtest.md) rebuilds every deal as it was on any day of a period; the CRMs keep the
field histories that makes possible (HubSpot: ``propertiesWithHistory``; Salesforce: ``OpportunityHistory``
and ``OpportunityFieldHistory``). A connector that can read them implements ``HistorySource``. What comes
back is CRM-neutral and keyed by the deal's id:

    FieldVersion(at, field, value)   from ``at`` on, ``field`` held ``value`` (None: empty)

``field`` is a ``policies.history`` field name: ``stage``, ``pipeline``, ``amount``, ``close_date``,
``owner``, a canonical ``DealField`` value (``next_step``, ...), or the CRM name of an extra field the policy
reads. Values are the domain's types (numbers, dates, the ``Channel``/``Readiness`` words, stage ids as the
policy names them), read with the same bounds as the deal mapping, so a bad value rejects the deal's history
(``RejectedRecord``) instead of being read as something else. Every tracked field's first version is the
value it had when the deal was created.

``untracked`` names the fields whose history the CRM does not keep (Salesforce: history tracking off); the
backtest uses their current value throughout. ``notes`` say so in words an admin can act on. ``since`` is
where the CRM's history starts (Salesforce keeps field history 18 months), None for "since creation".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from connectors import values as bounds
from connectors.base import Directory, RejectedRecord
from policies.model import Channel, Deal, DealField, FieldValue, Readiness

# crm-followup's own state: the backtest replaces it by the policy's simulated state, so it is not read
OWN_FIELDS = frozenset({DealField.FOLLOWUP_STATE, DealField.FOLLOWUP_STATE_SINCE, DealField.FOLLOWUP_REASON})

Reader = Callable[[str, Any], FieldValue]  # (the CRM's field name, its value in one version) -> our value


def read_text(name: str, value: Any) -> FieldValue:
    return bounds.text(name, value)


def read_choice(kind: Any, default: str | None) -> Reader:
    """A value of the enum ``kind`` as the deal mapping reads it (an unknown option: ``default``)."""

    def read(name: str, value: Any) -> FieldValue:
        word = bounds.text(name, value)
        if not word:
            return default
        try:
            return str(kind(word.strip().lower()).value)
        except ValueError:
            return default

    return read


def canonical_readers(
    read_date: Reader, read_number: Callable[[str, Any], float | None]
) -> Mapping[DealField, Reader]:
    """How each canonical field's versions are read, with the CRM's own date and number readers."""

    def interval(name: str, value: Any) -> FieldValue:
        return bounds.interval_days(name, read_number(name, value))

    return {
        DealField.NEXT_STEP: read_text,
        DealField.NEXT_STEP_WHY: read_text,
        DealField.NEXT_STEP_DATE: read_date,
        DealField.AGREED_INTERVAL_DAYS: interval,
        DealField.AGREED_CHANNEL: read_choice(Channel, None),
        DealField.READINESS: read_choice(Readiness, Readiness.UNKNOWN.value),
        DealField.QUALIFICATION_SCORE: read_number,
        DealField.CLOSE_REASON: read_text,
    }


@dataclass(frozen=True, slots=True)
class FieldVersion:
    at: datetime
    field: str
    value: FieldValue = None


@dataclass(frozen=True, slots=True)
class HistoryRead:
    """The histories of some deals, and what the CRM's history covers."""

    changes: Mapping[str, tuple[FieldVersion, ...]] = field(default_factory=dict)  # deal id -> versions
    untracked: tuple[str, ...] = ()
    since: datetime | None = None
    rejected: tuple[RejectedRecord, ...] = ()
    notes: tuple[str, ...] = ()


class HistorySource(Protocol):
    """A connector that reads deal histories (both CRM connectors)."""

    def read_histories(
        self, deals: Sequence[Deal], directory: Directory, *, all_since: datetime | None = None
    ) -> HistoryRead:
        """The histories of ``deals``. ``all_since`` says that ``deals`` are every deal open now or
        modified at or after that moment, so a connector may read the histories of that whole set by a
        filter instead of by id where that costs fewer calls (Salesforce); ids outside ``deals`` are
        dropped."""
        ...
