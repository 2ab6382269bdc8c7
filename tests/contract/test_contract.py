"""The ``CrmConnector`` contract (connectors/base.py), one suite for every CRM.

Each case runs on the in-memory CRM, the HubSpot connector on its sandbox and the Salesforce connector on
its sandbox (the ``crm`` fixture, tests/contract/conftest.py), and asserts on what the CRM holds afterwards,
read back without the connector under test (tests/contract/crms.py). What only one CRM has (HubSpot's
10,000-result search cap and OAuth refresh, Salesforce's Composite chaining, token renewal and daily
budget) is tested beside its connector, in tests/connectors/.

A test that plays several cycles keeps the worker's mirror as the cycle does (tests/contract/mirror.py)
and hands it to the connector, so "no self-echo" is checked exactly as the worker relies on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import timedelta

import pytest

from connectors.base import ActionOutcome, ChangeBatch, CrmConnector, Directory, OutcomeStatus
from connectors.errors import RetryLater
from policies.model import (
    Action,
    ChangeStage,
    CloseReason,
    CloseTask,
    CreateTask,
    Deal,
    EnrolInNurture,
    Explanation,
    Priority,
    ReactivateFromNurture,
    SetDealFields,
    TaskType,
    UpdateTask,
    make_key,
)
from tests.contract.crms import ContractCrm
from tests.contract.mirror import Mirror

NURTURE = "crm-followup contract nurture"
WHY = Explanation("contract test")
APPLIED = OutcomeStatus.APPLIED
ALREADY = OutcomeStatus.ALREADY_APPLIED


def deals_of(batches: Iterable[ChangeBatch]) -> dict[str, Deal]:
    return {d.id: d for b in batches for d in b.deals}


def open_with_contacts(deals: dict[str, Deal]) -> list[Deal]:
    return [d for _, d in sorted(deals.items()) if not d.is_closed and d.contacts]


def lost_stage(directory: Directory, deal: Deal) -> str:
    return next(s.id for s in directory.pipelines[deal.pipeline_id].stages if s.is_closed and not s.is_won)


def create_task(crm: ContractCrm, deal: Deal, tag: str) -> CreateTask:
    return CreateTask(
        key=make_key(tag, deal.id),
        deal_id=deal.id,
        rule_id="call-back",
        explanation=WHY,
        owner_id=deal.owner_id,
        subject="Call back",
        body="Call the buyer back, as agreed.",
        due_at=crm.now() + timedelta(days=2),
        task_type=TaskType.CALL,
        priority=Priority.HIGH,
        contact_id=deal.contacts[0].id if deal.contacts else None,
    )


def stop(directory: Directory, deal: Deal, tag: str = "stop") -> ChangeStage:
    return ChangeStage(
        key=make_key(tag, deal.id),
        deal_id=deal.id,
        rule_id="stop",
        explanation=WHY,
        pipeline_id=deal.pipeline_id,
        stage_id=lost_stage(directory, deal),
        close_reason="no response",
        expected_modified_at=deal.modified_at,
    )


def to_nurture(deal: Deal) -> list[Action]:
    return [
        SetDealFields(
            key=make_key("nurture-state", deal.id),
            deal_id=deal.id,
            rule_id="nurture",
            explanation=WHY,
            fields={"followup_state": "nurture", "followup_reason": "not now"},
            expected_modified_at=deal.modified_at,
        ),
        EnrolInNurture(
            key=make_key("enrol", deal.id),
            deal_id=deal.id,
            rule_id="nurture",
            explanation=WHY,
            contact_ids=tuple(c.id for c in deal.contacts),
            nurture=NURTURE,
        ),
    ]


def close(deal: Deal, task_id: str, key: str, reason: CloseReason) -> CloseTask:
    return CloseTask(
        key=make_key("close", task_id, reason),
        deal_id=deal.id,
        rule_id="call-back",
        explanation=WHY,
        task_id=task_id,
        task_key=key,
        reason=reason,
    )


def statuses(outcomes: Sequence[ActionOutcome]) -> list[OutcomeStatus]:
    return [o.status for o in outcomes]


class Worker:
    """A connector, the directory and the mirror, used as the worker's cycles use them."""

    def __init__(self, crm: ContractCrm, **options: object) -> None:
        self.crm = crm
        self.connector = crm.connector(**options)
        self.directory = self.connector.read_directory()
        self.mirror = Mirror(self.directory)
        self.cursor = self.mirror.store(self.connector.pull_changes(self.directory, None, self.mirror))[
            -1
        ].cursor

    def pull(self) -> dict[str, Deal]:
        """An incremental pull with the mirror, stored; the deals it returned."""
        batches = self.mirror.store(self.connector.pull_changes(self.directory, self.cursor, self.mirror))
        self.cursor = batches[-1].cursor
        return deals_of(batches)

    def apply(self, actions: Sequence[Action]) -> list[ActionOutcome]:
        outcomes = self.connector.apply(actions)
        self.mirror.written(actions, outcomes, self.crm.now())
        return outcomes


# ------------------------------------------------------------------------------------------ pulls


def test_a_full_pull_returns_every_deal_once_whole_and_resumes_from_any_batch(crm: ContractCrm) -> None:
    """Every deal comes once, with its contacts and activities; a full pull stopped after a batch goes on
    from that batch's cursor (or starts over), never as an incremental pull that would miss deals."""
    connector = crm.connector(deals_per_batch=50)
    directory = connector.read_directory()
    batches = list(connector.pull_changes(directory, None))
    ids = [d.id for b in batches for d in b.deals]
    deals = deals_of(batches)
    assert len(ids) == len(set(ids))
    assert set(ids) == crm.deal_ids()
    assert len(batches) >= 3  # 120 deals, 50 a batch
    assert any(d.contacts for d in deals.values())
    assert sum(len(d.activities) for d in deals.values()) > len(deals)
    stages = {(p.id, s.id) for p in directory.pipelines.values() for s in p.stages}
    assert {(d.pipeline_id, d.stage.id) for d in deals.values()} <= stages
    resumed = list(crm.connector(deals_per_batch=50).pull_changes(directory, batches[0].cursor))
    assert set(ids[len(batches[0].deals) :]) <= {d.id for b in resumed for d in b.deals}


def test_an_incremental_pull_returns_what_changed_and_what_was_removed(crm: ContractCrm) -> None:
    """A rep's edit, a logged call and a removal come back; the rest of the CRM does not."""
    connector = crm.connector()
    directory = connector.read_directory()
    full = list(connector.pull_changes(directory, None))
    deals = deals_of(full)
    edited, called, removed = open_with_contacts(deals)[:3]
    crm.tick()
    crm.edit_next_step(edited.id, "Changed by another integration", edited.owner_id)
    call_id = crm.log_inbound_call(called.id, called.owner_id)
    crm.remove(removed.id)

    changed = list(connector.pull_changes(directory, full[-1].cursor))

    got = deals_of(changed)
    assert got[edited.id].next_step.what == "Changed by another integration"
    assert call_id in {a.id for a in got[called.id].activities}
    assert removed.id in {r for b in changed for r in b.removed_deal_ids}
    assert removed.id not in got
    assert len(got) < len(deals) // 2  # the cost follows the change, not the CRM's size


# ------------------------------------------------------------------------------------------ writes


def test_every_action_kind_is_written_and_a_rerun_writes_nothing(crm: ContractCrm) -> None:
    """Each action kind lands in the CRM; a restarted worker that applies the same actions again, as its
    recovery does (what ``find_applied`` finds by key is not sent again), finds it all there and changes
    nothing."""
    crm.prepare_nurture(NURTURE)
    connector = crm.connector()
    directory = connector.read_directory()
    deal, other = open_with_contacts(deals_of(connector.pull_changes(directory, None)))[:2]
    contacts = {c.id for c in deal.contacts}
    create = create_task(crm, deal, "every-kind")
    first: list[Action] = [create, stop(directory, other), *to_nurture(deal)]

    outcomes = connector.apply(first)

    assert statuses(outcomes) == [APPLIED] * 4, outcomes
    task_id = outcomes[0].crm_ids[0]
    assert crm.task(task_id) == (create.key, True)
    assert crm.stage(other.id) == lost_stage(directory, other)
    assert crm.followup_state(deal.id) == "nurture"
    assert contacts <= crm.members(NURTURE)

    moved = UpdateTask(
        key=make_key("move", task_id),
        deal_id=deal.id,
        rule_id="call-back",
        explanation=WHY,
        task_id=task_id,
        task_key=create.key,
        due_at=crm.now() + timedelta(days=5),
    )
    closed = close(deal, task_id, create.key, CloseReason.SUPERSEDED)
    back = ReactivateFromNurture(
        key=make_key("back", deal.id),
        deal_id=deal.id,
        rule_id="nurture",
        explanation=WHY,
        contact_ids=tuple(sorted(contacts)),
        nurture=NURTURE,
    )
    assert statuses(connector.apply([moved, closed, back])) == [APPLIED] * 3
    assert crm.task(task_id) == (create.key, False)
    assert not contacts & crm.members(NURTURE)

    before = crm.stamps()
    restarted = crm.connector()
    list(restarted.pull_changes(restarted.read_directory(), None))
    again = [create, first[1], first[2], closed]
    found = restarted.find_applied([a.key for a in again])
    assert found == {create.key: (task_id,)}  # the task by its key; the other kinds leave no key behind
    rerun = restarted.apply([a for a in again if a.key not in found])
    assert statuses(rerun) == [ALREADY] * 3, rerun
    assert crm.stamps() == before


def test_a_deal_changed_since_it_was_read_is_a_conflict(crm: ContractCrm) -> None:
    """A stage change on a deal a rep edited after our read is not written."""
    connector = crm.connector()
    directory = connector.read_directory()
    deal = open_with_contacts(deals_of(connector.pull_changes(directory, None)))[0]
    crm.tick()
    crm.edit_next_step(deal.id, "Edited by a rep", deal.owner_id)

    (outcome,) = connector.apply([stop(directory, deal)])

    assert outcome.status is OutcomeStatus.CONFLICT
    assert crm.stage(deal.id) == deal.stage.id


def test_a_stop_and_a_nurture_with_an_open_auto_task_land_in_one_apply(crm: ContractCrm) -> None:
    """Closing our open task on a deal that stops (or goes to nurture) does not make the stage or state
    change of the same decision conflict: the deal is checked before any write of the apply."""
    crm.prepare_nurture(NURTURE)
    worker = Worker(crm)
    stopping, resting = open_with_contacts(worker.mirror.held)[:2]
    tasks = [create_task(crm, d, "open-task") for d in (stopping, resting)]
    created = worker.apply(tasks)
    assert statuses(created) == [APPLIED] * 2
    crm.tick()
    worker.pull()  # the next cycle: the mirror takes what our task writes did to the deals' stamps
    stopping, resting = worker.mirror.held[stopping.id], worker.mirror.held[resting.id]
    assert [t.key for t in stopping.auto_tasks if t.is_open] == [tasks[0].key]

    actions: list[Action] = [
        close(stopping, created[0].crm_ids[0], tasks[0].key, CloseReason.DEAL_STOPPED),
        stop(worker.directory, stopping),
        close(resting, created[1].crm_ids[0], tasks[1].key, CloseReason.DEAL_STOPPED),
        *to_nurture(resting),
    ]
    outcomes = worker.apply(actions)

    assert statuses(outcomes) == [APPLIED] * 5, outcomes
    assert crm.stage(stopping.id) == lost_stage(worker.directory, stopping)
    assert crm.followup_state(resting.id) == "nurture"
    assert {c.id for c in resting.contacts} <= crm.members(NURTURE)
    assert [crm.task(o.crm_ids[0])[1] for o in created] == [False, False]


def test_a_conflicting_stop_or_nurture_holds_back_its_task_closes_and_enrolment(crm: ContractCrm) -> None:
    """When a rep edited the deal after our read, the stop (or the nurture state) conflicts, and closing our
    task because the deal stops, or enrolling its contacts, waits with it: nothing of the decision is
    written, and the next evaluation decides again on fresh data."""
    crm.prepare_nurture(NURTURE)
    worker = Worker(crm)
    stopping, resting = open_with_contacts(worker.mirror.held)[:2]
    tasks = [create_task(crm, d, "held") for d in (stopping, resting)]
    created = worker.apply(tasks)
    assert statuses(created) == [APPLIED] * 2
    crm.tick()
    worker.pull()
    stopping, resting = worker.mirror.held[stopping.id], worker.mirror.held[resting.id]
    crm.tick()
    for deal in (stopping, resting):
        crm.edit_next_step(deal.id, "Edited by a rep after our read", deal.owner_id)
    before = crm.members(NURTURE)

    outcomes = worker.apply(
        [
            close(stopping, created[0].crm_ids[0], tasks[0].key, CloseReason.DEAL_STOPPED),
            stop(worker.directory, stopping),
            *to_nurture(resting),
        ]
    )

    assert statuses(outcomes) == [OutcomeStatus.CONFLICT] * 4, outcomes
    assert crm.stage(stopping.id) == stopping.stage.id
    assert crm.task(created[0].crm_ids[0]) == (tasks[0].key, True)
    assert crm.followup_state(resting.id) != "nurture"
    assert crm.members(NURTURE) == before


def test_a_rerun_pulls_no_deal_whose_only_change_was_ours(crm: ContractCrm) -> None:
    """After a cycle that wrote tasks, fields and a stop, the next pull leaves those deals out (the mirror
    already holds our writes), and still brings a rep's change, also one made to a deal we wrote."""
    crm.prepare_nurture(NURTURE)
    worker = Worker(crm)
    tasked, nurtured, stopped, bystander = open_with_contacts(worker.mirror.held)[:4]
    outcomes = worker.apply(
        [
            create_task(crm, tasked, "echo"),
            create_task(crm, nurtured, "echo"),
            *to_nurture(nurtured),
            stop(worker.directory, stopped),
        ]
    )
    assert set(statuses(outcomes)) == {APPLIED}
    ours = {tasked.id, nurtured.id, stopped.id}
    crm.tick()
    crm.edit_next_step(bystander.id, "Someone else's change", bystander.owner_id)

    pulled = worker.pull()

    assert not ours & set(pulled), sorted(ours & set(pulled))
    assert bystander.id in pulled
    crm.tick()
    crm.edit_next_step(tasked.id, "The rep answers our task", tasked.owner_id)
    assert worker.pull()[tasked.id].next_step.what == "The rep answers our task"


# ------------------------------------------------------------------------------------------ faults


def until_done(attempt: Callable[[], None], tries: int = 10) -> None:
    """What the worker does when a cycle stops with ``RetryLater``: run again, up to ``tries`` times."""
    for _ in range(tries - 1):
        try:
            attempt()
        except RetryLater:
            continue
        return
    attempt()


def test_faults_change_no_result_and_duplicate_no_write(crm: ContractCrm) -> None:
    """With transient faults (5xx, dropped connections, rate limits, lock errors), a pull resumed as the
    worker resumes it gives the fault-free deals, and tasks written as the worker writes them (outcomes
    not final are looked up by key and applied again) exist once each."""
    clean_connector = crm.connector(deals_per_batch=50)
    directory = clean_connector.read_directory()
    clean = deals_of(clean_connector.pull_changes(directory, None))
    crm.faults(True)
    pulled: list[ChangeBatch] = []

    def pull() -> None:  # a fresh connector each time, resuming from the last stored batch's cursor
        cursor = pulled[-1].cursor if pulled else None
        for batch in crm.connector(deals_per_batch=50).pull_changes(directory, cursor):
            pulled.append(batch)

    until_done(pull)
    faulty = deals_of(pulled)
    shape: Callable[[Deal], object] = lambda d: (d.stage.id, len(d.contacts), len(d.activities))  # noqa: E731
    assert {i: shape(d) for i, d in faulty.items()} == {i: shape(d) for i, d in clean.items()}

    targets = [d for _, d in sorted(clean.items()) if not d.is_closed][:40]
    actions = [replace(create_task(crm, d, "faults"), contact_id=None) for d in targets]
    done: dict[str, ActionOutcome] = {}

    def write() -> None:
        connector: CrmConnector = crm.connector()
        pending = [a for a in actions if a.key not in done]
        found = connector.find_applied([a.key for a in pending])  # the ledger's recovery after a crash
        done.update({k: ActionOutcome(k, ALREADY, ids) for k, ids in found.items()})
        pending = [a for a in pending if a.key not in done]
        for outcome in connector.apply(pending):
            if outcome.status in (APPLIED, ALREADY):
                done[outcome.key] = outcome
            elif outcome.status is not OutcomeStatus.RETRY_LATER:
                pytest.fail(f"{outcome.key}: {outcome.status} {outcome.message}")
        if len(done) < len(actions):
            raise RetryLater("some writes are to be retried")

    until_done(write)
    assert crm.faults_seen() > 0  # the faults happened, and were ridden out
    crm.faults(False)
    assert sorted(crm.task_keys([d.id for d in targets])) == sorted(a.key for a in actions)
    # The worker's recovery, by a restarted worker before its first pull, finds all of it there.
    restarted = crm.connector()
    found = restarted.find_applied([a.key for a in actions])
    rerun = restarted.apply([a for a in actions if a.key not in found])
    assert statuses(rerun) == [ALREADY] * (len(actions) - len(found))
    assert sorted(crm.task_keys([d.id for d in targets])) == sorted(a.key for a in actions)


class _LeaseGone(Exception):
    """What the worker's guard raises once another worker holds the account (sync.cycle: its stop)."""


class _Lease:
    """A guard for ``apply(before_each_call=...)``: the lease is lost at the first call (``at_first_call``),
    or once something of the apply has reached the CRM (another worker took over between two writes)."""

    def __init__(self, crm: ContractCrm, *, at_first_call: bool) -> None:
        self.crm, self.at_first_call = crm, at_first_call
        self.before = crm.stamps()
        self.at_stop: dict[str, object] | None = None  # what the CRM held when the guard said no
        self.checks = 0

    def __call__(self) -> None:
        self.checks += 1
        now = self.crm.stamps()
        if self.at_first_call or now != self.before:
            self.at_stop = now
            raise _LeaseGone


@pytest.mark.parametrize("lost", ["at the first call", "after a write"])
def test_a_lease_lost_mid_apply_sends_nothing_more_and_recovery_writes_each_action_once(
    crm: ContractCrm, lost: str
) -> None:
    """``apply`` asks the guard before each CRM call (its reads before writing included); once it raises,
    the error comes out of ``apply`` as it is and no further call is made: nothing at all when it raises at
    the first, nothing after the writes already made when another worker takes over between two of them.
    A restarted worker's recovery (``find_applied``, then ``apply`` of the rest) then writes each action
    once. The batch takes several write calls on every CRM: tasks, then the deal update (Salesforce here
    writes one record per collection, so its seven collections take two Composite calls)."""
    connector = crm.connector(write_batch_size=1) if crm.name == "salesforce" else crm.connector()
    directory = connector.read_directory()
    deals = [
        d for _, d in sorted(deals_of(connector.pull_changes(directory, None)).items()) if not d.is_closed
    ]
    actions: list[Action] = [replace(create_task(crm, d, "lease"), contact_id=None) for d in deals[:6]]
    stopped = deals[6]
    actions.append(stop(directory, stopped, "lease-stop"))
    calls_before = connector.usage().calls
    lease = _Lease(crm, at_first_call=lost == "at the first call")

    with pytest.raises(_LeaseGone):
        connector.apply(actions, before_each_call=lease)

    assert lease.at_stop is not None
    assert crm.stamps() == lease.at_stop  # nothing reached the CRM after the guard said no
    if crm.name != "memory":  # the in-memory CRM counts an apply as one call, and asks before each write
        assert connector.usage().calls - calls_before == lease.checks - 1  # and no call was made
    if lease.at_first_call:
        assert lease.at_stop == lease.before
    else:
        assert lease.at_stop != lease.before  # some of the batch was written
        assert crm.stage(stopped.id) != lost_stage(directory, stopped)  # and not the rest
    connector.read_directory()  # the guard belonged to that apply only: later calls go through

    restarted = crm.connector()  # the taker's recovery: before its pull, as the cycle runs it
    restarted.read_directory()
    found = restarted.find_applied([a.key for a in actions])
    outcomes = restarted.apply([a for a in actions if a.key not in found])
    assert all(o.status in (APPLIED, ALREADY) for o in outcomes), outcomes
    tasks = [a for a in actions if isinstance(a, CreateTask)]
    assert sorted(crm.task_keys([a.deal_id for a in tasks])) == sorted(a.key for a in tasks)
    assert crm.stage(stopped.id) == lost_stage(directory, stopped)
