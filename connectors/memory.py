"""``InMemoryCrm``: a real, in-process CRM behind the ``CrmConnector`` port, for fast worker tests.

It keeps deals (with our tasks) and nurture lists in dictionaries and implements the contract of
``connectors.base`` faithfully: incremental pulls by a change sequence (a task written on a deal marks the
deal changed, as the real connectors report whole aggregates), no self-echo (a deal whose last change was
our own write and whose stamp the worker's mirror already holds, or that it would not keep, is left out),
idempotency keys on tasks found again by ``find_applied``, optimistic concurrency through
``expected_modified_at`` (a stop or nurture that conflicts holds back its task closes and enrolment), and
outcomes per action (deal writes with the new stamp). ``tests/contract`` runs the same contract suite on it
as on the real connectors. The effect of an action on a deal is ``policies.simulate.apply_actions``, so the
fake and the engine agree. Tests drive it like a rep in the CRM (``put_deal``, ``remove_deal``) and inject
connector errors with ``fail``.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime

from connectors.base import (
    ActionOutcome,
    ApiUsage,
    BeforeCall,
    ChangeBatch,
    Cursor,
    Directory,
    KnownDeals,
    OutcomeStatus,
)
from connectors.checklist import plain_checklist
from connectors.held_back import held_back
from policies.model import (
    Action,
    AutoTask,
    ChangeStage,
    ChecklistItem,
    CloseTask,
    CreateTask,
    Deal,
    EnrolInNurture,
    Owner,
    Pipeline,
    ReactivateFromNurture,
    SetDealFields,
    UpdateTask,
)
from policies.simulate import apply_actions


def _no_guard() -> None:
    """No check before a call: ``apply`` without ``before_each_call``."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclasses.dataclass(frozen=True, slots=True)
class TaskRecord:
    """A task as the CRM stores it: what a rep sees (subject, body, due) and whose deal it is."""

    task: AutoTask
    deal_id: str
    body: str


class InMemoryCrm:
    """A CRM in dictionaries. ``clock`` stamps writes; ``page_size``: deals per pulled batch (changeable)."""

    def __init__(
        self,
        *,
        owners: Iterable[Owner] = (),
        pipelines: Iterable[Pipeline] = (),
        deals: Iterable[Deal] = (),
        clock: Callable[[], datetime] = _utc_now,
        page_size: int = 100,
    ) -> None:
        self._owners = {o.id: o for o in owners}
        self._pipelines = {p.id: p for p in pipelines}
        self._clock = clock
        self.page_size = page_size
        self._seq = 0
        self._deals: dict[str, Deal] = {}
        self._changed: dict[str, int] = {}  # deal id -> sequence of its last change (removals included)
        self._ours: dict[str, int] = {}  # deal id -> sequence of its last change by ``apply``
        self._removed: set[str] = set()
        self._task_by_key: dict[str, str] = {}  # idempotency key -> task id, for find_applied
        self._bodies: dict[str, str] = {}  # task key -> body, as a rep reads it
        self.nurture: dict[str, set[str]] = {}
        self._calls: Counter[str] = Counter()
        self._faults: list[tuple[str, Exception | None]] = []  # None: let that call through
        for deal in deals:
            self.put_deal(deal)

    # ------------------------------------------------------------------ what a rep or a test does

    def put_deal(self, deal: Deal) -> None:
        """Create or replace a deal (as an edit in the CRM would); it shows up in the next pull."""
        self._deals[deal.id] = deal
        self._removed.discard(deal.id)
        for task in deal.auto_tasks:
            self._task_by_key.setdefault(task.key, task.id)
        self._touch(deal.id)

    def remove_deal(self, deal_id: str) -> None:
        self._deals.pop(deal_id, None)
        self._removed.add(deal_id)
        self._touch(deal_id)

    def deal(self, deal_id: str) -> Deal:
        return self._deals[deal_id]

    def deals(self) -> list[Deal]:
        return [self._deals[k] for k in sorted(self._deals)]

    def tasks(self) -> list[TaskRecord]:
        """Every task of ours on the deals still in the CRM, ordered by deal and key."""
        return [
            TaskRecord(task, deal.id, self._bodies.get(task.key, ""))
            for deal in self.deals()
            for task in sorted(deal.auto_tasks, key=lambda t: t.key)
        ]

    def fail(self, method: str, error: Exception, times: int = 1, *, after: int = 0) -> None:
        """Make ``times`` calls of ``method`` raise ``error`` (a CRM outage, an expired token, a 429 storm),
        the first of them once ``after`` more calls of it went through."""
        self._faults.extend([(method, None)] * after + [(method, error)] * times)

    def clear_faults(self) -> None:
        """Drop the faults ``fail`` queued that have not struck yet."""
        self._faults.clear()

    def faults_left(self) -> int:
        """How many queued faults have not struck yet."""
        return sum(1 for _, error in self._faults if error is not None)

    @property
    def revision(self) -> int:
        """How many changes the CRM has seen (a rep's or ours): unchanged means nothing was written."""
        return self._seq

    def _touch(self, deal_id: str) -> None:
        self._seq += 1
        self._changed[deal_id] = self._seq

    def _call(self, endpoint: str) -> None:
        self._calls[endpoint] += 1
        for i, (method, error) in enumerate(self._faults):
            if method == endpoint:
                del self._faults[i]
                if error is not None:
                    raise error
                return

    # ------------------------------------------------------------------ the CrmConnector port

    @property
    def name(self) -> str:
        return "memory"

    def read_directory(self) -> Directory:
        self._call("read_directory")
        return Directory(owners=dict(self._owners), pipelines=dict(self._pipelines))

    def pull_changes(
        self, directory: Directory, cursor: Cursor | None, known: KnownDeals | None = None
    ) -> Iterator[ChangeBatch]:
        self._call("pull_changes")
        if cursor is None or "full_after" in cursor:
            # A full pull, or the rest of one: every batch but the last says where to resume it.
            start = int(cursor["seq"]) if cursor is not None else self._seq
            after = cursor["full_after"] if cursor is not None else ""
            ids = [d for d in sorted(self._deals) if d > after]
            for i in range(0, len(ids), self.page_size):
                self._call("pull_page")
                ids_page = ids[i : i + self.page_size]
                last = i + self.page_size >= len(ids)
                resume = {"seq": str(start)} if last else {"seq": str(start), "full_after": ids_page[-1]}
                yield ChangeBatch(deals=tuple(self._deals[d] for d in ids_page), cursor=resume)
            if not ids:
                yield ChangeBatch(cursor={"seq": str(start)})
            return
        since = int(cursor["seq"])
        changed = sorted((seq, d) for d, seq in self._changed.items() if seq > since)
        if known is not None:  # leave out our own writes' echoes
            echo = [d for seq, d in changed if self._ours.get(d) == seq and d in self._deals]
            held = known.modified_at(echo)
            # an echo the mirror holds already, or of a deal it would not keep (one we closed): left out
            skipped = {
                d
                for d in echo
                if (held[d] == self._deals[d].modified_at if d in held else not known.wanted(self._deals[d]))
            }
            changed = [(seq, d) for seq, d in changed if d not in skipped]
            if not changed:
                yield ChangeBatch(cursor={"seq": str(self._seq)})
                return
        for i in range(0, len(changed), self.page_size):
            self._call("pull_page")
            page = changed[i : i + self.page_size]
            yield ChangeBatch(
                deals=tuple(self._deals[d] for _, d in page if d in self._deals),
                removed_deal_ids=tuple(d for _, d in page if d in self._removed),
                cursor={"seq": str(page[-1][0])},
            )

    def find_applied(self, keys: Collection[str]) -> Mapping[str, tuple[str, ...]]:
        self._call("find_applied")
        return {k: (self._task_by_key[k],) for k in keys if k in self._task_by_key}

    def apply(
        self, actions: Sequence[Action], *, before_each_call: BeforeCall | None = None
    ) -> list[ActionOutcome]:
        """Deal writes are checked before anything is written, so a stop or nurture that conflicts holds
        back its task closes and enrolment (``connectors.held_back``), as the real connectors do.

        ``before_each_call`` is called before the check (the real connectors' reads before writing) and
        before each action's write (as if each were a call of its own), so a guard that raises part way
        leaves the actions before it written and the rest not."""
        guard = before_each_call or _no_guard
        guard()
        self._call("apply")
        checked: dict[str, ActionOutcome] = {}
        for action in actions:
            deal = self._deals.get(action.deal_id)
            if isinstance(action, ChangeStage | SetDealFields) and deal is not None:
                refused = self._refusal(deal, action)
                if refused is not None:
                    checked[action.key] = refused
        held = held_back(actions, checked)
        outcomes = []
        for action in actions:
            outcome = held.get(action.key)
            if outcome is None:
                guard()
                outcome = self._apply_one(action)
            outcomes.append(outcome)
        return outcomes

    def usage(self) -> ApiUsage:
        return ApiUsage(calls_by_endpoint=dict(self._calls))

    def close(self) -> None:
        """Nothing to release; present for the port."""

    # ------------------------------------------------------------------ applying one action

    def _apply_one(self, action: Action) -> ActionOutcome:
        """Check what a CRM would refuse, then apply with ``policies.simulate`` (one meaning of actions)."""
        deal = self._deals.get(action.deal_id)
        if deal is None:
            return ActionOutcome(action.key, OutcomeStatus.FAILED, message=f"deal {action.deal_id} not found")
        if isinstance(action, EnrolInNurture | ReactivateFromNurture):
            return self._nurture(action)
        refused = self._refusal(deal, action)
        if refused is not None:
            return refused
        updated = apply_actions(deal, [action], self._clock(), pipelines=self._pipelines)
        if isinstance(action, CreateTask | UpdateTask | CloseTask):
            updated = dataclasses.replace(
                updated, modified_at=deal.modified_at
            )  # tasks are their own records
        elif _same(updated, deal):
            return ActionOutcome(action.key, OutcomeStatus.ALREADY_APPLIED, (deal.id,))
        self._deals[deal.id] = updated
        for task in updated.auto_tasks:
            self._task_by_key.setdefault(task.key, task.id)
        if isinstance(action, CreateTask):
            self._bodies[action.key] = _text(action.body, action.items)
        elif isinstance(action, UpdateTask) and action.body is not None:
            self._bodies[action.task_key] = _text(action.body, action.items)
        elif isinstance(action, CloseTask) and action.items:
            self._bodies[action.task_key] = _text(action.body or "", action.items)
        self._touch(deal.id)
        self._ours[deal.id] = self._seq
        written = self._task_by_key[action.key] if isinstance(action, CreateTask) else deal.id
        if isinstance(action, UpdateTask | CloseTask):
            written = action.task_id
        stamp = updated.modified_at if isinstance(action, ChangeStage | SetDealFields) else None
        return ActionOutcome(action.key, OutcomeStatus.APPLIED, (written,), modified_at=stamp)

    def _refusal(self, deal: Deal, action: Action) -> ActionOutcome | None:
        if isinstance(action, ChangeStage):
            pipeline = self._pipelines.get(action.pipeline_id)
            if pipeline is None or pipeline.stage(action.stage_id) is None:
                return ActionOutcome(
                    action.key, OutcomeStatus.FAILED, message=f"unknown stage {action.stage_id}"
                )
        expected = getattr(action, "expected_modified_at", None)
        if expected is not None and expected != deal.modified_at:
            # changed since it was read: a conflict, unless the deal already holds what the action writes
            # (our own write whose answer was lost, applied again after a crash)
            if _same(apply_actions(deal, [action], self._clock(), pipelines=self._pipelines), deal):
                return ActionOutcome(action.key, OutcomeStatus.ALREADY_APPLIED, (deal.id,))
            return ActionOutcome(action.key, OutcomeStatus.CONFLICT, message=f"deal {deal.id} changed")
        if (
            isinstance(action, ChangeStage)
            and deal.stage.id == action.stage_id
            and deal.pipeline_id == action.pipeline_id
        ):
            return ActionOutcome(action.key, OutcomeStatus.ALREADY_APPLIED, (deal.id,))
        if isinstance(action, CreateTask) and action.key in self._task_by_key:
            return ActionOutcome(action.key, OutcomeStatus.ALREADY_APPLIED, (self._task_by_key[action.key],))
        if isinstance(action, CloseTask) and not action.task_key:  # somebody's own task
            rep = next((t for t in deal.rep_tasks if t.id == action.task_id), None)
            if rep is None or not rep.is_open:
                return ActionOutcome(action.key, OutcomeStatus.ALREADY_APPLIED, (action.task_id,))
            return None
        if isinstance(action, UpdateTask | CloseTask):
            task = next((t for t in deal.auto_tasks if t.id == action.task_id), None)
            if task is None:
                return ActionOutcome(
                    action.key, OutcomeStatus.FAILED, message=f"task {action.task_id} not found"
                )
            if isinstance(action, CloseTask) and not task.is_open:
                return ActionOutcome(action.key, OutcomeStatus.ALREADY_APPLIED, (task.id,))
        return None

    def _nurture(self, action: EnrolInNurture | ReactivateFromNurture) -> ActionOutcome:
        members = self.nurture.setdefault(action.nurture, set())
        before = set(members)
        if isinstance(action, EnrolInNurture):
            members.update(action.contact_ids)
        elif action.remove_from_nurture:
            members.difference_update(action.contact_ids)
        status = OutcomeStatus.APPLIED if members != before else OutcomeStatus.ALREADY_APPLIED
        return ActionOutcome(action.key, status)


def _text(body: str, items: Sequence[ChecklistItem]) -> str:
    """What a rep reads: the body, or for a combined task its checklist under the body as heading."""
    return plain_checklist(items, body) if items else body


def _same(updated: Deal, deal: Deal) -> bool:
    """Whether an update changed nothing but the modification stamps (it was already applied)."""
    return (
        dataclasses.replace(updated, modified_at=deal.modified_at, stage_entered_at=deal.stage_entered_at)
        == deal
    )
