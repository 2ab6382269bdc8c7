"""The port between the worker and a CRM: what every connector does, whatever the CRM.

A connector gathers (directory, changed deals as whole aggregates) and acts (applies actions in batches,
finds actions already applied by their idempotency keys). It never decides: that is ``policies``.

Contract, checked by ``tests/contract`` for every connector:

* ``pull_changes(cursor=None)`` is a full pull: every live deal, then the removals are implied by absence
  (the worker reconciles its mirror). With a cursor it returns what changed since, plus the ids of deals
  that were archived or deleted. Batches come in order; each carries the cursor to persist once that
  batch is stored. A batch of a full pull that is not its last carries a cursor that, passed back,
  continues that full pull (or starts it over), never an incremental pull from it: the worker resumes an
  interrupted full pull (a rate-limit storm, a crash) from the last batch it stored. Deals come as
  complete aggregates (contacts, activities, our auto-tasks), also when only an activity or an
  association changed.
* ``apply`` writes a batch of actions and returns one outcome per action, in input order. It never raises
  for a single bad record (that is an outcome); it raises ``RetryLater`` / ``FixConfiguration`` for
  problems that stop the whole cycle.
* ``find_applied`` answers, for idempotency keys, which are already in the CRM (and under which ids), so
  that a crash between a CRM write and the ledger update never leads to a duplicate.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Protocol

from policies.model import Action, Deal, Owner, Pipeline

Cursor = Mapping[str, str]  # opaque to the worker; JSON-serialisable


@dataclass(frozen=True, slots=True)
class Directory:
    """The slow-changing reference data: owners and pipelines with their stages."""

    owners: Mapping[str, Owner] = field(default_factory=dict)
    pipelines: Mapping[str, Pipeline] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    """A CRM record that could not be mapped into the domain model; the run goes on without it."""

    object_type: str
    record_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ChangeBatch:
    deals: tuple[Deal, ...] = ()
    removed_deal_ids: tuple[str, ...] = ()
    cursor: Cursor = field(default_factory=dict)
    rejected: tuple[RejectedRecord, ...] = ()


class OutcomeStatus(StrEnum):
    APPLIED = "applied"
    ALREADY_APPLIED = "already_applied"  # found in the CRM by its key, or a no-op (member already in list)
    CONFLICT = "conflict"  # the deal changed since it was read: not written, re-evaluate next cycle
    FAILED = "failed"  # this action cannot be applied (record gone, validation error): do not retry as is
    RETRY_LATER = "retry_later"  # transient, after the retry layer gave up for this cycle


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    key: str
    status: OutcomeStatus
    crm_ids: tuple[str, ...] = ()  # ids of the records written (task id, ...)
    message: str | None = None  # ids and error codes only; never record contents


@dataclass(frozen=True, slots=True)
class TaskView:
    """A crm-followup task as the CRM stores it and a rep reads it (the demo shows these)."""

    subject: str
    due: datetime | date | None  # Salesforce task due dates are dates
    owner_id: str | None
    body: str


@dataclass(frozen=True, slots=True)
class ApiUsage:
    """What the connector has spent: the product's real cost."""

    calls_by_endpoint: Mapping[str, int] = field(default_factory=dict)
    daily_limit: int | None = None
    daily_remaining: int | None = None

    @property
    def calls(self) -> int:
        return sum(self.calls_by_endpoint.values())


class CrmConnector(Protocol):
    """What the worker needs from a CRM. Implemented by HubSpotConnector, SalesforceConnector, InMemoryCrm."""

    @property
    def name(self) -> str:
        """``hubspot`` or ``salesforce`` (or ``memory`` for the in-memory fake)."""
        ...

    def read_directory(self) -> Directory: ...

    def pull_changes(self, directory: Directory, cursor: Cursor | None) -> Iterator[ChangeBatch]: ...

    def find_applied(self, keys: Collection[str]) -> Mapping[str, tuple[str, ...]]: ...

    def apply(self, actions: Sequence[Action]) -> list[ActionOutcome]: ...

    def usage(self) -> ApiUsage: ...

    def close(self) -> None: ...
