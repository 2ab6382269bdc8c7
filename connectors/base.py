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
* No self-echo: an incremental pull does not return a deal whose only changes since the worker last read
  or wrote it are the worker's own writes (and what the CRM derived from them). ``known`` answers what
  the worker's mirror holds; a deal skipped this way whose modification stamp moved anyway (a roll-up of
  our own task, say) comes back in ``ChangeBatch.restamped`` with its new stamp, so the next conditional
  write of it expects the stamp the CRM has.
* ``apply`` writes a batch of actions and returns one outcome per action, in input order. It never raises
  for a single bad record (that is an outcome); it raises ``RetryLater`` / ``FixConfiguration`` for
  problems that stop the whole cycle. A deal's conditional writes (``expected_modified_at``) are checked
  against the deal as it was before any write of the same ``apply``, so our own writes never make them
  conflict; when one conflicts, the actions that only make sense with it (closing tasks because the deal
  stops, enrolling its contacts in nurture) conflict with it. Outcomes carry the modification stamp the
  CRM answered with, when it answers with one.
* ``find_applied`` answers, for idempotency keys, which it knows to be in the CRM (and under which ids;
  a connector may know only what it pulled or wrote since it started), and ``apply`` of an action that is
  in the CRM all the same (a task ``find_applied`` did not know, a stage or field the deal already holds,
  a member already enrolled) answers ALREADY_APPLIED and writes nothing. So the worker's recovery after a
  crash between a CRM write and the ledger update (``find_applied`` for the pending keys, then ``apply``
  of the rest, by a freshly started connector) never leads to a duplicate.
* ``apply(actions, before_each_call=guard)`` calls ``guard()`` before every CRM call it makes for that
  apply (reads before the writes and every retry of a call included), at the connector's one door to the
  CRM, and makes no call when it raises: what it raises propagates out of ``apply`` unchanged (it is never
  an outcome), so the calls made before stay made and the rest of the batch is not sent. The worker's
  guard confirms that it still holds the account's lease (``sync.cycle``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Protocol

from connectors.errors import SkipRecord
from policies.model import Action, Deal, Owner, Pipeline

Cursor = Mapping[str, str]  # opaque to the worker; JSON-serialisable
# Called before each CRM call of an ``apply``; raises to stop the apply before that call (see the contract).
BeforeCall = Callable[[], None]


@dataclass(frozen=True, slots=True)
class Directory:
    """The slow-changing reference data: owners and pipelines with their stages."""

    owners: Mapping[str, Owner] = field(default_factory=dict)
    pipelines: Mapping[str, Pipeline] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    """A deal that could not be mapped into the domain model (or evaluated); the run goes on without it.

    ``record_id`` is the deal's id (whichever of its records was at fault: ``field`` says which and where,
    e.g. ``calls:123.hs_timestamp``), ``reason`` a word the metrics count by (``SkipRecord.reason``) and
    ``detail`` the sentence for the log and the audit trail (ids, field names, numbers and dates only).
    """

    object_type: str
    record_id: str
    reason: str
    field: str | None = None
    detail: str = ""

    @classmethod
    def of(cls, exc: SkipRecord) -> RejectedRecord:
        return cls(exc.object_type, exc.record_id, exc.reason, exc.field, str(exc))


@dataclass(frozen=True, slots=True)
class ChangeBatch:
    deals: tuple[Deal, ...] = ()
    removed_deal_ids: tuple[str, ...] = ()
    cursor: Cursor = field(default_factory=dict)
    rejected: tuple[RejectedRecord, ...] = ()
    # Deals left out because nothing changed on them but their modification stamp (our own writes, roll-ups
    # the CRM derived from activities): the mirror keeps them and takes the CRM's stamp.
    restamped: Mapping[str, datetime] = field(default_factory=dict)


class KnownDeals(Protocol):
    """What the worker's mirror holds, asked by an incremental pull to leave out its own echoes."""

    def modified_at(self, deal_ids: Collection[str]) -> Mapping[str, datetime]:
        """The modification stamp the mirror holds for each of ``deal_ids`` it has (cheap: no aggregates)."""
        ...

    def deals(self, deal_ids: Collection[str]) -> Mapping[str, Deal]:
        """The mirrored aggregates of ``deal_ids`` (those the mirror has)."""
        ...

    def wanted(self, deal: Deal) -> bool:
        """Whether the mirror would keep ``deal``, a deal it does not have, read without its activities."""
        ...


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
    # The written record's modification stamp as the CRM answered it (a task's own; for a deal write, the
    # deal's after every write of this apply to it); None when the CRM's answer carries none.
    modified_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TaskView:
    """A crm-followup task as the CRM stores it and a rep reads it (the demo shows these)."""

    subject: str
    due: datetime | date | None  # Salesforce task due dates are dates
    owner_id: str | None
    body: str


# API calls crm-followup already made on this account since a time, by earlier cycles (whichever worker ran
# them): the worker reads it from the state store, so a daily budget is the account's, not a process's.
PriorUsage = Callable[[datetime], int]


def no_prior_usage(_since: datetime) -> int:
    return 0


@dataclass(frozen=True, slots=True)
class ApiUsage:
    """What the connector has spent: the product's real cost."""

    calls_by_endpoint: Mapping[str, int] = field(default_factory=dict)
    daily_limit: int | None = None
    daily_remaining: int | None = None

    @property
    def calls(self) -> int:
        return sum(self.calls_by_endpoint.values())


@dataclass(frozen=True, slots=True)
class SetupNeeds:
    """What the policies need in the CRM (``Policy.requirements()`` as plain data): ``followup setup``."""

    stages: frozenset[tuple[str, str]] = frozenset()  # (pipeline id, stage id) the policies move deals to
    nurture_names: frozenset[str] = frozenset()
    deal_fields: frozenset[str] = frozenset()  # extra CRM fields the policies read


@dataclass(slots=True)
class SetupReport:
    """What ``followup setup`` found (``ok``), created (or, in a dry run, would create), and what needs a
    human: ``problems`` (the setup is incomplete) and ``warnings`` (it works, but look)."""

    ok: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class AdminConnector(Protocol):
    """What ``followup setup`` and ``followup demo`` do with a real connector besides running cycles."""

    def setup(self, needs: SetupNeeds, *, dry_run: bool) -> SetupReport:
        """Check the CRM against ``needs`` and create what may be created (nothing when ``dry_run``)."""
        ...

    def followup_tasks(self, limit: int) -> list[TaskView]:
        """The last ``limit`` tasks crm-followup created, as a rep reads them (``followup demo``)."""
        ...

    def usage(self) -> ApiUsage: ...

    def close(self) -> None: ...


class CrmConnector(Protocol):
    """What the worker needs from a CRM. Implemented by HubSpotConnector, SalesforceConnector, InMemoryCrm."""

    @property
    def name(self) -> str:
        """``hubspot`` or ``salesforce`` (or ``memory`` for the in-memory fake)."""
        ...

    def read_directory(self) -> Directory: ...

    def pull_changes(
        self, directory: Directory, cursor: Cursor | None, known: KnownDeals | None = None
    ) -> Iterator[ChangeBatch]: ...

    def find_applied(self, keys: Collection[str]) -> Mapping[str, tuple[str, ...]]: ...

    def apply(
        self, actions: Sequence[Action], *, before_each_call: BeforeCall | None = None
    ) -> list[ActionOutcome]: ...

    def usage(self) -> ApiUsage: ...

    def close(self) -> None: ...
