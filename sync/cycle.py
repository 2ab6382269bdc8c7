"""One cycle for one CRM account: gather -> decide -> act -> checkpoint, safe to kill at any moment.

1. Lease the account (one cycle per account, also across workers sharing a PostgreSQL store).
2. Recover: ledger intents without an outcome are traces of a crash between "intent committed" and
   "outcome committed"; the CRM is asked by idempotency key whether the write happened, and what it did not
   see is applied again. This comes before the pull, so the pull brings the CRM's own view of it.
3. Pull what changed since the stored cursor (everything on the first run and when a full reconciliation is
   due) into the mirror; each batch and the cursor after it commit together, so the cursor never gets ahead
   of its data. A complete full pull drops mirror rows it did not see.
4. Evaluate every mirrored deal, owner by owner in chunks (time-based rules fire without CRM changes, and
   memory stays flat); audit the decisions; drop actions the ledger already settled.
5. Act in batches that never split a deal's actions: commit the intents, call the CRM (the connector
   renews the lease before each of its calls, the first and the reads included, and sends
   nothing more once it is lost: a worker frozen mid-apply whose account was taken over resumes into a
   stop, and the taker's recovery settles the batch by key), commit the outcomes together with the
   write-through of their effects into the mirror (so the next evaluation agrees with the CRM even before
   a pull sees our writes). New actions gather across
   evaluation chunks until a batch of ``apply_batch_size`` is full, so the connector can fill each CRM call
   of a write kind to the CRM's batch limit (HubSpot 100 inputs, Salesforce 200 records) instead of
   writing part-empty calls per chunk.

Shadow mode stops after step 4: it decides, logs and audits, and writes nothing to the CRM. A canary
rollout (``Cycle.cohort``, ``policies.rollout``) decides that per deal: deals outside it are handled as in
shadow mode, the rest are applied, and the ledger and the audit record each deal's cohort. A shadow action
of a deal the rollout now enforces is applied once (widening); narrowing never undoes what was applied.
``RetryLater`` ends the cycle cleanly (it resumes next time), and so does ``StoreUnavailable`` (the state
store's connection was lost mid-transaction, e.g. the server ended the session of a process frozen past
``store.idle_in_transaction_timeout``: that transaction committed nothing); ``FixConfiguration`` blocks
the account until its configuration changes. One bad deal never stops the account: a deal the connector
cannot map (a value out of bounds, unreadable, of the wrong type) or the engine cannot evaluate is rejected
with its id, the field and the reason (``record_rejected`` in the log, an audit row,
``CycleResult.rejected`` for the metrics), leaves the mirror (so it is not judged on stale data; its next
change brings it back), and the rest of the account goes on. An owner whose time zone is unknown gets the
policy's calendar zone, with a warning (``owner_time_zone_unknown``) once per owner and cycle.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from connectors.base import ActionOutcome, CrmConnector, Directory, OutcomeStatus, RejectedRecord
from connectors.errors import FixConfiguration, RetryLater, SkipRecord
from policies.model import Action, CreateTask, Deal, Owner, Pipeline, Plan, action_kind
from policies.rollout import ENFORCE_ALL, SHADOW_ALL, Cohort
from policies.simulate import apply_actions
from store import AuditEntry, Result, StateStore
from store.database import StoreUnavailable
from store.ledger import APPLIED, CONFLICT, FAILED, INTENT, RETRY_LATER, SHADOW
from store.mirror import worth_mirroring
from sync.crashpoints import CrashPoints
from sync.directory import with_known_time_zones
from sync.effects import Simulate, audit_entries, deal_batches, mirror_after
from sync.known import MirrorKnowledge
from sync.leases import acquire
from sync.progress import NoProgress, Progress

log = structlog.get_logger(__name__)

Decide = Callable[[Sequence[Deal], datetime, Mapping[str, Owner]], Plan]
CohortOf = Callable[[Deal, Owner | None], Cohort]  # policies.rollout.cohort with the rollout bound

LEDGER_STATUS = {
    OutcomeStatus.APPLIED: APPLIED,
    OutcomeStatus.ALREADY_APPLIED: APPLIED,
    OutcomeStatus.CONFLICT: CONFLICT,
    OutcomeStatus.FAILED: FAILED,
    OutcomeStatus.RETRY_LATER: RETRY_LATER,
}
SETTLED = frozenset({APPLIED, FAILED})  # never applied again under the same key


@dataclass(frozen=True, slots=True)
class CycleOptions:
    apply_batch_size: int = 10_000  # actions per apply: enough of each write kind to fill the CRMs' batches
    evaluate_chunk: int = 2000
    full_pull_every: timedelta = timedelta(hours=24)
    lease_ttl: timedelta = timedelta(minutes=10)


@dataclass
class Cycle:
    """Everything one cycle needs, injected by the composition root (``worker.py``) or a test."""

    account: str
    connector: CrmConnector
    store: StateStore
    decide: Decide  # policies.planner.plan with the policy bound
    clock: Callable[[], datetime]
    holder: str  # this worker's lease identity, "host:pid"
    shadow: bool = False
    cohort: CohortOf | None = None  # a canary rollout; None: every deal enforced, or shadow with ``shadow``
    options: CycleOptions = CycleOptions()
    simulate: Simulate = apply_actions  # the effect of applied actions, written through to the mirror
    fingerprint: str | None = None  # of the configuration; a FixConfiguration block names it
    should_stop: Callable[[], bool] = lambda: False
    progress: Progress = field(default_factory=NoProgress)
    crash: CrashPoints = field(default_factory=CrashPoints)
    due_at: datetime | None = None  # when the scheduled cycle was due (recorded with the run)
    # False when the caller holds the lease for the cycle and ends it itself (serve: sync/fleet.py moves the
    # account's due time on and drops the lease in one transaction, so no other worker slips in between)
    release_lease: bool = True


@dataclass
class CycleResult:
    run_id: str
    account: str
    status: str  # ok | stopped | retry_later | fix_configuration | lease_held | blocked | error
    shadow: bool
    counts: Counter[str] = field(default_factory=Counter)
    actions: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (kind, rule, ledger status)
    api_calls: int = 0
    api_calls_by_endpoint: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)  # deals rejected, by reason
    duration_s: float = 0.0
    error: str | None = None


class _Stop(Exception):
    """Raised inside the cycle when a stop was requested or the lease was lost: ends it between batches."""


def run_cycle(cycle: Cycle) -> CycleResult:
    """Run one cycle and record it; never raises for CRM errors (they become the result's status)."""
    run = _Run(cycle)
    with structlog.contextvars.bound_contextvars(run_id=run.result.run_id, account=cycle.account):
        result = run.result
        try:
            run.execute()
        except StoreUnavailable as exc:  # before the run was recorded, or while recording how it ended
            result.status, result.error = "retry_later", f"StoreUnavailable: {exc}"
            log.warning("cycle_interrupted_retry_later", error="StoreUnavailable", detail=str(exc))
        except BaseException as exc:  # a bug or the store failing: never reported as a completed cycle
            if result.status == "ok":
                result.status, result.error = "error", type(exc).__name__
            raise
        finally:
            _log_finished(result)
        return result


def _log_finished(result: CycleResult) -> None:
    if result.status != "lease_held":
        log.info(
            "cycle_finished",
            status=result.status,
            shadow=result.shadow,
            api_calls=result.api_calls,
            duration_ms=round(result.duration_s * 1000),
            error=result.error,
            counts=dict(sorted(result.counts.items())),
        )


class _Run:
    def __init__(self, cycle: Cycle) -> None:
        self.c = cycle
        self.result = CycleResult(uuid.uuid4().hex[:16], cycle.account, "ok", cycle.shadow)
        self.counts = self.result.counts
        self.now = cycle.clock()
        self.pipelines: Mapping[str, Pipeline] = {}
        self._usage_before: Counter[str] = Counter()
        self.queued: list[Action] = []  # new enforced actions gathered across chunks, not yet intents
        self.queued_cohorts: dict[str, str] = {}

    def execute(self) -> CycleResult:
        c, result = self.c, self.result
        started = time.monotonic()
        usage_before = Counter(c.connector.usage().calls_by_endpoint)
        c.store.ensure_account(c.account, c.connector.name, self.now)
        if not acquire(c.store, c.account, c.holder, self.now, c.options.lease_ttl):
            result.status = "lease_held"
            log.info("cycle_skipped_lease_held")
            return result
        abandoned = c.store.mark_abandoned_runs(c.account, self.now)
        if abandoned:
            log.warning("cycle_resuming_after_crash", abandoned_runs=abandoned)
        c.store.start_run(result.run_id, c.account, c.holder, c.shadow, self.now, due_at=c.due_at)
        self._usage_before = usage_before
        c.crash.reached("lease_acquired")
        try:
            self._steps()
        except _Stop as stop:
            result.status = "stopped"
            result.error = str(stop)
        except RetryLater as exc:
            result.status = "retry_later"
            result.error = f"{type(exc).__name__}: {exc}"
            log.warning("cycle_interrupted_retry_later", error=type(exc).__name__, status=exc.status)
        except StoreUnavailable as exc:  # e.g. the server ended this process's session while it was frozen
            result.status = "retry_later"
            result.error = f"StoreUnavailable: {exc}"
            log.warning("cycle_interrupted_retry_later", error="StoreUnavailable", detail=str(exc))
        except FixConfiguration as exc:
            result.status = "fix_configuration"
            result.error = f"FixConfiguration: {exc}"
            c.store.block_account(c.account, str(exc), c.fingerprint, c.clock())
            log.error(  # noqa: TRY400 - a configuration problem, not a bug: no traceback
                "account_needs_configuration", error=str(exc), hint="fix it, then the cycles resume"
            )
        except BaseException as exc:
            result.status = "error"
            result.error = type(exc).__name__
            self._finish(started, usage_before)
            raise
        self._finish(started, usage_before)
        return result

    def _finish(self, started: float, usage_before: Counter[str]) -> None:
        c, result = self.c, self.result
        usage = c.connector.usage()
        after = Counter(usage.calls_by_endpoint)
        result.api_calls_by_endpoint = after - usage_before
        result.api_calls = sum(result.api_calls_by_endpoint.values())
        result.duration_s = time.monotonic() - started
        c.store.finish_run(
            result.run_id,
            result.status,
            dict(self.counts),
            result.api_calls,
            result.error,
            c.clock(),
            api_daily_limit=usage.daily_limit,
        )
        c.crash.reached("run_finished")
        if c.release_lease:
            c.store.release_lease(c.account, c.holder)

    # ------------------------------------------------------------------------------------------ steps

    def _steps(self) -> None:
        c = self.c
        directory = with_known_time_zones(c.connector.read_directory())
        self.pipelines = directory.pipelines
        c.store.record_owners(c.account, list(directory.owners.values()), self.now)  # for the report
        c.crash.reached("directory_read")
        if not c.shadow:
            self._recover()  # before the pull: it then brings the CRM's own view of what recovery wrote
        self._pull(directory)
        self._evaluate_and_act(directory)

    def _check(self) -> None:
        """Between batches: stop if asked, renew the lease (stop if it was lost), and record the API calls
        made so far, so the account's daily budget counts them whatever happens to this process."""
        c = self.c
        if c.should_stop():
            raise _Stop("stop requested")
        if not acquire(c.store, c.account, c.holder, c.clock(), c.options.lease_ttl):
            raise _Stop("lease lost")
        spent = Counter(c.connector.usage().calls_by_endpoint) - self._usage_before
        c.store.note_run_api_calls(self.result.run_id, sum(spent.values()))

    def _pull(self, directory: Directory) -> None:
        c = self.c
        state = c.store.cursor_state(c.account)
        # A full pull an earlier cycle began and did not finish (a storm outlasted the retries, a crash)
        # resumes from its last stored batch's cursor, and its rows keep the id of the pull that began it.
        resumed = state.full_pull_run
        full = (
            resumed is not None
            or state.cursor is None
            or state.last_full_pull_at is None
            or self.now - state.last_full_pull_at >= c.options.full_pull_every
        )
        run_id = self.result.run_id
        pull_id = resumed or run_id
        if full and resumed is None:
            c.store.begin_full_pull(c.account, run_id, self.now)
        log.info("pull_started", full=full, resumed=resumed is not None)
        c.progress.start("pull", None)
        try:
            known = MirrorKnowledge(c.store, c.account)
            cursor = state.cursor if resumed is not None or not full else None
            for batch in c.connector.pull_changes(directory, cursor, known):
                keep = [d for d in batch.deals if worth_mirroring(d)]
                drop = {d.id for d in batch.deals if not worth_mirroring(d)} | set(batch.removed_deal_ids)
                # a rejected deal leaves the mirror: its last good version could get wrong actions
                drop |= {r.record_id for r in batch.rejected}
                restamped = {k: v for k, v in batch.restamped.items() if k not in drop}
                c.store.store_batch(c.account, pull_id, keep, drop, batch.cursor, c.clock(), restamped)
                self.counts["pulled"] += len(batch.deals)
                self.counts["restamped"] += len(restamped)
                self.counts["removed"] += len(batch.removed_deal_ids)
                self._reject(batch.rejected)
                c.progress.advance(len(batch.deals))
                c.crash.reached("batch_stored")
                self._check()
        except SkipRecord as exc:  # the connector could not go on past one record: keep what we have
            full = False
            self._reject([RejectedRecord.of(exc)])
        finally:
            c.progress.finish()
        if full:
            self.counts["dropped"] += c.store.finish_full_pull(c.account, pull_id, c.clock())
        self.counts["mirrored"] = c.store.mirror_count(c.account)
        c.crash.reached("pull_finished")

    def _recover(self) -> None:
        """Settle intents an earlier crash left without an outcome: found in the CRM, or applied again."""
        c = self.c
        pending = c.store.pending_intents(c.account)
        if not pending:
            return
        found: dict[str, tuple[str, ...]] = {}
        for start in range(0, len(pending), 100):
            found.update(c.connector.find_applied([a.key for a in pending[start : start + 100]]))
        done = [a for a in pending if a.key in found]
        outcomes = [ActionOutcome(a.key, OutcomeStatus.ALREADY_APPLIED, found[a.key]) for a in done]
        self._record_outcomes(done, outcomes)
        self.counts["recovered"] += len(done)
        c.crash.reached("recovery_checked")
        again = [a for a in pending if a.key not in found]
        log.warning("crash_recovery", pending=len(pending), found_in_crm=len(done), reapplied=len(again))
        self._apply(again)

    def _evaluate_and_act(self, directory: Directory) -> None:
        c = self.c
        for whole in c.store.iter_mirror(c.account, c.options.evaluate_chunk):
            chunk, plan = self._decide(whole, directory)
            self.counts["evaluated"] += len(chunk)
            self.counts["planned"] += len(plan.actions)
            self.counts["deferred"] += len(plan.deferred)
            cohorts = self._cohorts(chunk, directory)
            new, in_crm = self._new_actions(chunk, plan.actions, cohorts)
            audit = [
                dataclasses.replace(e, mode=cohorts[e.deal_id].mode, cohort=cohorts[e.deal_id].name)
                for e in audit_entries(plan, new)
            ]
            c.store.record_audit(c.account, self.result.run_id, self._mode, c.clock(), audit)
            c.crash.reached("audit_recorded")
            names = {deal_id: cohort.name for deal_id, cohort in cohorts.items()}
            if in_crm:  # already in the CRM (seen on a pulled task) though the ledger lost track
                c.store.record_actions(
                    c.account, self.result.run_id, [a for a, _ in in_crm], INTENT, c.clock(), names
                )
                self._record_outcomes(
                    [a for a, _ in in_crm],
                    [ActionOutcome(a.key, OutcomeStatus.ALREADY_APPLIED, (tid,)) for a, tid in in_crm],
                )
            held = [a for a in new if not cohorts[a.deal_id].enforced]
            if held:
                c.store.record_actions(c.account, self.result.run_id, held, SHADOW, c.clock(), names)
                for action in held:
                    self._count_action(action, SHADOW)
                    log.info(
                        "shadow_action",
                        deal_id=action.deal_id,
                        rule=action.rule_id,
                        kind=action_kind(action),
                        cohort=names[action.deal_id],
                    )
            self._queue([a for a in new if cohorts[a.deal_id].enforced], names)
        self._flush(everything=True)

    def _queue(self, actions: Sequence[Action], cohorts: Mapping[str, str]) -> None:
        """Gather a chunk's new actions; apply full batches (the rest waits for the next chunk or the end).

        Nothing is lost by waiting: an action that is not yet an intent when the cycle stops or crashes is
        planned again by the next cycle (its deals were not written)."""
        self.queued.extend(actions)
        self.queued_cohorts.update({a.deal_id: cohorts[a.deal_id] for a in actions})
        self._flush(everything=False)

    def _flush(self, *, everything: bool) -> None:
        size = self.c.options.apply_batch_size
        if not self.queued or (not everything and len(self.queued) < size):
            return
        batches = deal_batches(self.queued, size)
        keep = [] if everything or len(batches[-1]) >= size else batches.pop()
        ready = [a for batch in batches for a in batch]
        self.queued = keep
        cohorts, self.queued_cohorts = (
            self.queued_cohorts,
            {a.deal_id: self.queued_cohorts[a.deal_id] for a in keep},
        )
        self._apply(ready, cohorts)

    def _decide(self, chunk: Sequence[Deal], directory: Directory) -> tuple[Sequence[Deal], Plan]:
        """The plan for a chunk; when the engine raises, each deal alone finds the ones it cannot evaluate,
        which are rejected, and the chunk is planned again without them (budgets span the chunk). The
        normal path costs nothing extra; a second failure is a bug that is not one deal's, and propagates."""
        c = self.c
        try:
            return chunk, c.decide(chunk, self.now, directory.owners)
        except Exception:  # isolated below, deal by deal
            log.warning("chunk_evaluation_failed", deals=len(chunk), hint="evaluating deal by deal")
        good: list[Deal] = []
        bad: list[RejectedRecord] = []
        for deal in chunk:
            try:
                c.decide([deal], self.now, directory.owners)
            except Exception as exc:  # rejected with the error's type (its message might quote the deal)
                detail = f"deal {deal.id}: {type(exc).__name__} while evaluating"
                bad.append(RejectedRecord("deal", deal.id, "evaluation_failed", None, detail))
            else:
                good.append(deal)
        self._reject(bad)
        return good, c.decide(good, self.now, directory.owners)

    def _reject(self, rejected: Sequence[RejectedRecord]) -> None:
        """Log, count and audit deals that could not be mapped or evaluated: the run goes on without them."""
        if not rejected:
            return
        entries = []
        for r in rejected:
            self.counts["rejected"] += 1
            self.result.rejected[r.reason] += 1
            log.warning(
                "record_rejected",
                object_type=r.object_type,
                record_id=r.record_id,
                field=r.field,
                reason=r.reason,
                detail=r.detail,
            )
            evidence = (("object", r.object_type), ("field", r.field or ""), ("reason", r.reason))
            entries.append(AuditEntry(r.record_id, "record_rejected", False, "rejected", r.detail, evidence))
        self.c.store.record_audit(self.c.account, self.result.run_id, self._mode, self.c.clock(), entries)

    @property
    def _mode(self) -> str:
        return "shadow" if self.c.shadow else "enforce"

    def _cohorts(self, chunk: Sequence[Deal], directory: Directory) -> dict[str, Cohort]:
        """Each deal's rollout cohort: the rollout's verdict, else the whole account's mode."""
        c = self.c
        if c.shadow or c.cohort is None:
            whole = SHADOW_ALL if c.shadow else ENFORCE_ALL
            return {deal.id: whole for deal in chunk}
        owners = directory.owners
        return {deal.id: c.cohort(deal, owners.get(deal.owner_id or "")) for deal in chunk}

    def _new_actions(
        self, chunk: Sequence[Deal], actions: Sequence[Action], cohorts: Mapping[str, Cohort]
    ) -> tuple[list[Action], list[tuple[Action, str]]]:
        """Actions not settled yet, and tasks the CRM already has under the same key (task id). A shadow
        action of a deal now enforced is new (a widened rollout, or shadow switched off): it is applied."""
        statuses = self.c.store.ledger_statuses(self.c.account, [a.key for a in actions])
        tasks_by_key = {t.key: t.id for d in chunk for t in d.auto_tasks}
        new: list[Action] = []
        in_crm: list[tuple[Action, str]] = []
        for action in actions:
            status = statuses.get(action.key)
            enforced = cohorts[action.deal_id].enforced
            if status in SETTLED or (not enforced and status == SHADOW):
                self.counts["settled"] += 1
            elif isinstance(action, CreateTask) and action.key in tasks_by_key and enforced:
                in_crm.append((action, tasks_by_key[action.key]))
            else:
                new.append(action)
        self.counts["new"] += len(new)
        return new, in_crm

    def _apply(self, actions: Sequence[Action], cohorts: Mapping[str, str] | None = None) -> None:
        c = self.c
        size = c.options.apply_batch_size
        if not actions:
            return
        c.progress.start("apply", len(actions))
        try:
            for batch in deal_batches(actions, size):
                self._check()
                c.store.record_actions(c.account, self.result.run_id, batch, INTENT, c.clock(), cohorts)
                c.crash.reached("intents_recorded")
                # the connector renews the lease before each of its calls (``_hold_lease``), the first
                # included: a process frozen since the check above (a paused VM), during the apply's own
                # reads or between its writes, resumes into a stop, not into a write; the taker settles
                # these intents
                outcomes = self._call_apply(batch)
                c.crash.reached("crm_applied")
                self._record_outcomes(batch, outcomes)
                c.crash.reached("outcomes_recorded")
                c.progress.advance(len(batch))
        finally:
            c.progress.finish()

    def _hold_lease(self) -> None:
        """Renew the account's lease, or stop: the guard the connector runs before each CRM call of an apply.

        A renewal rather than a read of holder and expiry: an apply longer than the TTL keeps its lease,
        and one whose lease ran out while nobody took it goes on (nobody else can have written for it). A
        stop here ends the cycle as ``stopped`` / ``lease lost``; the batch's intents stay pending for the
        holder's recovery, which finds what this apply wrote by key (``find_applied``, then ``apply``,
        which answers ALREADY_APPLIED for what is in the CRM), as after a crash part way through a batch.
        """
        c = self.c
        if not acquire(c.store, c.account, c.holder, c.clock(), c.options.lease_ttl):
            log.warning("lease_lost_before_crm_call")
            raise _Stop("lease lost")

    def _call_apply(self, batch: Sequence[Action]) -> list[ActionOutcome]:
        guard = self._hold_lease
        try:
            outcomes = self.c.connector.apply(batch, before_each_call=guard)
        except SkipRecord:  # a connector should report one bad record as an outcome; isolate it anyway
            outcomes = []
            for action in batch:
                try:
                    outcomes.extend(self.c.connector.apply([action], before_each_call=guard))
                except SkipRecord as exc:
                    log.warning("record_rejected", object_type=exc.object_type, record_id=exc.record_id)
                    outcomes.append(ActionOutcome(action.key, OutcomeStatus.FAILED, message=str(exc)))
        if [o.key for o in outcomes] != [a.key for a in batch]:
            raise RuntimeError("connector.apply returned outcomes that do not match its actions")
        return outcomes

    def _record_outcomes(self, actions: Sequence[Action], outcomes: Sequence[ActionOutcome]) -> None:
        """Commit outcomes and write their effects through to the mirror, in one transaction."""
        c = self.c
        results = [Result(o.key, LEDGER_STATUS[o.status], o.crm_ids, o.message) for o in outcomes]
        effective: dict[str, list[Action]] = {}
        for action, outcome, result in zip(actions, outcomes, results, strict=True):
            self._count_action(action, result.status)
            if outcome.status is OutcomeStatus.ALREADY_APPLIED:
                self.counts["already_applied"] += 1
            if result.status == APPLIED:
                effective.setdefault(action.deal_id, []).append(action)
            else:
                log.warning(
                    "action_not_applied",
                    deal_id=action.deal_id,
                    rule=action.rule_id,
                    kind=action_kind(action),
                    status=result.status,
                    message=outcome.message,
                )
        now = c.clock()
        mirrored = c.store.mirror_deals(c.account, effective)
        answered = {o.key: o for o in outcomes}
        after = [
            mirror_after(mirrored[d], acts, answered, now, self.pipelines, c.simulate)
            for d, acts in effective.items()
            if d in mirrored
        ]
        keep = [d for d in after if worth_mirroring(d)]
        drop = [d.id for d in after if not worth_mirroring(d)]
        c.store.record_results(c.account, results, keep, now, mirror_drop=drop)

    def _count_action(self, action: Action, status: str) -> None:
        self.counts[status] += 1
        self.result.actions[(action_kind(action), action.rule_id, status)] += 1
