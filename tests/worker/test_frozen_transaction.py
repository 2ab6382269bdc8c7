"""A worker frozen in the middle of a transaction does not hold the fleet's rows (PostgreSQL, but one).

A process stopped by SIGSTOP (a paused VM, a stalled container, a long GC pause) inside a transaction keeps
that transaction's row locks for as long as it is stopped: the server cannot tell it from a slow client.
Here one connection plays the frozen worker: it takes the locks a worker takes (the heartbeat's UPDATE of
its lease rows, the claim's ``accounts`` rows ``FOR UPDATE``) and then sends nothing more. A second store,
opened as ``followup serve`` opens it, must still claim the account once the frozen worker's lease has
expired, within a bounded time: the server ends the frozen session after
``store.idle_in_transaction_timeout`` and its locks go with it. Each wait has a guard, so the test fails
instead of hanging when the locks are never freed (as they were not before the setting existed).

Then the frozen worker resumes: its next statement fails with ``StoreUnavailable`` (nothing of its
transaction was committed), the store carries on over a new connection, and the heartbeat reports the
lease lost. Reads whose caller works between rows (a backtest replaying each deal) survive a slow caller.
A holder the idle timeout cannot end is waited for at most ``lock_timeout``. A cycle whose transaction
the server ended stops ``retry_later``; one frozen between its intents and the CRM call writes nothing
once resumed (SQLite: the lease check needs no server). Nothing is written twice.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.memory import InMemoryCrm
from policies.history import DealHistory, FieldChange
from store import StateStore
from store import claims as claims_q
from store import ledger as ledger_q
from store.claims import Claim
from store.database import StoreUnavailable
from store.history import HistoryPull, HistoryStore
from store.ledger import INTENT
from store.schema import accounts
from sync.crashpoints import CrashPoints
from sync.cycle import Cycle, CycleOptions, run_cycle
from tests.worker.conftest import OWNERS, PIPELINE, T0, Clock, make_deal, toy_decide

TIMEOUT = timedelta(seconds=1)  # the setting, low so the test is quick (the default is a minute)
TTL = timedelta(minutes=1)
GUARD = 30.0  # seconds: far past the timeout; reaching it means the locks were never freed
FROZEN, OTHER = "frozen-host:1", "other-host:2"


def ttl(_account: str) -> timedelta:
    return TTL


@pytest.fixture
def pg_url(postgres_url: str) -> str:
    """This test process's PostgreSQL database, emptied."""
    engine = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text("DROP SCHEMA public CASCADE"))
        connection.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    return postgres_url


@pytest.fixture
def open_store(pg_url: str) -> Iterator[Callable[..., StateStore]]:
    """Stores opened as ``followup serve`` opens them (with the setting), closed after the test."""
    opened: list[StateStore] = []

    def open_one(timeout: timedelta | None = TIMEOUT) -> StateStore:
        store = StateStore(pg_url, idle_in_transaction_timeout=timeout)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


def _backend_pid(connection: sa.Connection) -> int:
    return int(connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(store: StateStore, pid: int) -> None:
    """Free a frozen session the server did not end (the guard's clean-up, so no test hangs)."""
    with store.engine.connect() as connection:
        connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        connection.commit()


def _frozen_holder_of(store: StateStore) -> None:
    """Account ``a``, claimed by FROZEN an hour ago: its lease (one minute) has long expired at T0."""
    store.register_accounts({"a": "hubspot"}, T0 - timedelta(hours=1))
    assert [c.account for c in store.claim_due(FROZEN, T0 - timedelta(hours=1), 1, ttl)] == ["a"]


def _claim_within(store: StateStore, guard: float) -> tuple[list[Claim], float]:
    """``claim_due`` for OTHER at T0 on a thread (it may block on a lock), polled until it claims something
    or ``guard`` seconds pass; the claims and the seconds it took."""
    started = time.monotonic()
    found: list[Claim] = []
    failed: list[BaseException] = []

    def poll() -> None:
        try:
            while time.monotonic() - started < guard:
                found.extend(store.claim_due(OTHER, T0, 1, ttl))
                if found:
                    return
                time.sleep(0.1)
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    thread.join(guard + 5)
    if failed:
        raise failed[0]
    return found, time.monotonic() - started


def _freeze(store: StateStore, take_locks: Callable[[sa.Connection], object]) -> tuple[sa.Connection, int]:
    """A connection of ``store`` that begins a transaction, takes locks, and then sends nothing (frozen)."""
    connection = store.engine.connect()
    pid = _backend_pid(connection)
    take_locks(connection)
    return connection, pid


def _renewing(connection: sa.Connection) -> None:
    """The heartbeat's UPDATE of FROZEN's lease row, in a transaction left open (it renews to an hour ago
    plus the TTL, so the lease still looks expired at T0; what matters is the row lock)."""
    assert claims_q.renew(connection, FROZEN, {"a": TTL}, T0 - timedelta(hours=1)) == set()


def _claiming(connection: sa.Connection) -> None:
    """The claim's ``SELECT ... FOR UPDATE`` of the account row, in a transaction left open."""
    connection.execute(sa.select(accounts.c.name).where(accounts.c.name == "a").with_for_update())


@pytest.mark.parametrize(
    "take_locks", [_renewing, _claiming], ids=["frozen-in-its-heartbeat", "frozen-in-its-claim"]
)
def test_a_worker_frozen_in_a_transaction_does_not_keep_the_others_from_its_expired_lease(
    open_store: Callable[..., StateStore], take_locks: Callable[[sa.Connection], object]
) -> None:
    """Frozen in its heartbeat, the other worker's lease UPDATE waits on the lease row; frozen in a claim,
    ``FOR UPDATE SKIP LOCKED`` skips the account: either way, only the server ending the frozen session
    lets the other worker claim the account. Before ``idle_in_transaction_timeout`` it never could."""
    frozen, other = open_store(), open_store()
    _frozen_holder_of(frozen)
    connection, pid = _freeze(frozen, take_locks)
    try:
        claims, seconds = _claim_within(other, GUARD)
    finally:
        if not claims:
            _terminate(other, pid)
        connection.invalidate()
        connection.close()
    assert [(c.account, c.interrupted) for c in claims] == [("a", True)], (
        f"the other worker could not claim the frozen worker's expired account within {GUARD:.0f} s"
    )
    assert seconds < GUARD
    assert other.lease_holder("a") == (OTHER, T0 + TTL)


def test_a_lock_holder_that_is_not_idle_is_waited_for_a_bounded_time(
    open_store: Callable[..., StateStore],
) -> None:
    """A holder the idle timeout cannot end (its session busy, or stuck sending a result to a frozen
    client): the other worker's lease UPDATE gives up after ``lock_timeout`` (twice the idle timeout) with
    ``StoreUnavailable`` (its claim loop tries again at the next poll) instead of waiting without end."""
    frozen, other = open_store(), open_store()
    _frozen_holder_of(frozen)
    connection, pid = _freeze(frozen, _renewing)

    def stuck() -> None:
        with contextlib.suppress(StoreUnavailable):  # ended by the clean-up below
            connection.execute(sa.text("SELECT pg_sleep(:s)"), {"s": GUARD + 30})

    busy = threading.Thread(target=stuck, daemon=True)
    busy.start()
    started = time.monotonic()
    try:
        with pytest.raises(StoreUnavailable, match="lock_timeout"):
            _claim_within(other, GUARD)
        waited = time.monotonic() - started
    finally:
        _terminate(other, pid)
        busy.join(10)
        connection.invalidate()
        connection.close()
    assert waited < GUARD
    assert waited >= 2 * TIMEOUT.total_seconds() - 0.5  # it did wait for the lock, up to lock_timeout
    claims, _ = _claim_within(other, GUARD)  # the holder gone, the next poll claims the account
    assert [c.account for c in claims] == ["a"]


def test_the_frozen_worker_resumed_finds_its_transaction_gone_and_its_lease_lost(
    open_store: Callable[..., StateStore],
) -> None:
    """SIGCONT: the statement it was about to send fails with ``StoreUnavailable`` (its renewal was never
    committed), the same store then works over a new connection, and its heartbeat reports the lease lost."""
    frozen, other = open_store(), open_store()
    _frozen_holder_of(frozen)
    connection, pid = _freeze(frozen, _renewing)
    try:
        claims, _ = _claim_within(other, GUARD)
        assert [c.account for c in claims] == ["a"]
        with pytest.raises(StoreUnavailable, match="nothing of the transaction was committed"):
            claims_q.renew(connection, FROZEN, {"a": TTL}, T0)
    finally:
        if connection.invalidated is False and not connection.closed:
            _terminate(other, pid)
        connection.close()
    assert frozen.renew_leases(FROZEN, {"a": TTL}, T0) == {"a"}
    assert frozen.lease_holder("a") == (OTHER, T0 + TTL)
    assert frozen.complete_claim("a", FROZEN, T0 + timedelta(hours=1)) is False  # the other one's to end


def test_sessions_carry_the_setting_and_none_leaves_the_server_s(
    open_store: Callable[..., StateStore],
) -> None:
    with open_store().engine.connect() as connection:
        assert connection.execute(sa.text("SHOW idle_in_transaction_session_timeout")).scalar() == "1s"
        assert connection.execute(sa.text("SHOW lock_timeout")).scalar() == "2s"
    with open_store(timedelta(minutes=1)).engine.connect() as connection:
        assert connection.execute(sa.text("SHOW idle_in_transaction_session_timeout")).scalar() == "1min"
    with open_store(None).engine.connect() as connection:
        assert connection.execute(sa.text("SHOW idle_in_transaction_session_timeout")).scalar() == "0"
        assert connection.execute(sa.text("SHOW lock_timeout")).scalar() == "0"


def test_a_slow_backtest_reader_is_not_cut_off(open_store: Callable[..., StateStore]) -> None:
    """The history store hands deals out in chunks, each read in a transaction of its own: a caller that
    spends longer than the timeout on each deal still gets every one (one transaction across them all was
    ended by the server after the first pause)."""
    history = HistoryStore(open_store().engine)
    deals = [make_deal(i) for i in range(1, 6)]
    change = DealHistory((FieldChange(T0 - timedelta(days=1), "stage", "open"),))
    pull = HistoryPull({"seq": "1"}, T0 - timedelta(days=30), None, (), T0)
    history.save(
        "acme", read=[(d, change) for d in deals], refreshed=[], removed=(), keep_only=None, pull=pull
    )
    seen = []
    for deal, _ in history.deals("acme", T0 - timedelta(days=30), chunk=2):
        time.sleep(TIMEOUT.total_seconds() * 1.5)  # the backtest replaying this deal, on a busy machine
        seen.append(deal.id)
    assert seen == [d.id for d in deals]


class _FrozenWhileRecording(StateStore):
    """A store whose first write of outcomes pauses past the timeout between two statements of its
    transaction, as a worker stopped there would: the server ends the session under it."""

    frozen = False

    def record_results(self, account: str, results: Any, *args: Any, **kwargs: Any) -> None:
        if not self.frozen:
            self.frozen = True
            with self.engine.begin() as c:
                ledger_q.record_results(c, account, results[:1], T0)
                time.sleep(TIMEOUT.total_seconds() * 1.5)
                ledger_q.record_results(c, account, results, T0)
            return
        super().record_results(account, results, *args, **kwargs)


def test_a_cycle_whose_store_session_was_ended_stops_retry_later_and_writes_nothing_twice(
    pg_url: str,
) -> None:
    """The cycle's transaction fails (``StoreUnavailable``): the cycle ends ``retry_later`` (recorded so),
    not ``error``; the intents of the batch whose outcomes were lost stay open, and the next cycle finds
    those writes in the CRM by their keys instead of writing them again."""
    clock = Clock()
    crm = InMemoryCrm(
        owners=OWNERS, pipelines=(PIPELINE,), deals=[make_deal(i) for i in range(1, 11)], clock=clock
    )
    store = _FrozenWhileRecording(pg_url, idle_in_transaction_timeout=TIMEOUT)

    def make_cycle() -> Cycle:
        options = CycleOptions(apply_batch_size=3, evaluate_chunk=4)
        return Cycle("acme", crm, store, toy_decide, clock, "test-host:1", options=options)

    try:
        result = run_cycle(make_cycle())
        assert result.status == "retry_later"
        assert result.error is not None
        assert result.error.startswith("StoreUnavailable: ")
        assert [r.status for r in store.runs("acme")] == ["retry_later"]
        open_intents = [e.key for e in store.ledger("acme") if e.status == INTENT]
        assert len(open_intents) == 3  # the first batch (apply_batch_size 3): written, outcomes lost
        again = run_cycle(make_cycle())
        assert again.status == "ok"
        assert again.counts["recovered"] == 3
    finally:
        store.close()
    tasks = [t.task.key for t in crm.tasks()]
    assert len(tasks) == len(set(tasks)) == 10


class _TakenOverAfterIntents(CrashPoints):
    """The worker freezes right after committing a batch's intents; meanwhile another worker takes its
    expired lease over (as it would after the TTL)."""

    def __init__(self, store: StateStore, clock: Clock) -> None:
        super().__init__()
        self.store, self.clock = store, clock

    def reached(self, point: str) -> None:
        super().reached(point)
        if point == "intents_recorded":
            assert self.store.acquire_lease("acme", OTHER, self.clock(), TTL, take_over="test-host:1")


def test_a_worker_frozen_between_its_intents_and_the_crm_call_writes_nothing_once_resumed(
    tmp_path: Path,
) -> None:
    """The lease is checked again just before the CRM call: frozen after its intents were committed and
    resumed after another worker took the account, the cycle stops (``lease lost``) without writing that
    batch; the intents stay open for the taker, whose recovery applies each once. Before, the resumed
    worker wrote the batch and the taker (not finding it yet) could write it too."""
    clock = Clock()
    crm = InMemoryCrm(
        owners=OWNERS, pipelines=(PIPELINE,), deals=[make_deal(i) for i in range(1, 11)], clock=clock
    )
    store = StateStore(f"sqlite:///{tmp_path / 'state.sqlite'}")
    options = CycleOptions(apply_batch_size=3, evaluate_chunk=4)
    try:
        frozen = Cycle(
            "acme",
            crm,
            store,
            toy_decide,
            clock,
            "test-host:1",
            options=options,
            crash=_TakenOverAfterIntents(store, clock),
        )
        result = run_cycle(frozen)
        assert (result.status, result.error) == ("stopped", "lease lost")
        assert crm.tasks() == []  # the batch whose intents it had committed was not written
        assert len([e for e in store.ledger("acme") if e.status == INTENT]) == 3
        taker = run_cycle(Cycle("acme", crm, store, toy_decide, clock, OTHER, options=options))
        assert taker.status == "ok"
        assert taker.counts["recovered"] == 0  # nothing of it was in the CRM: applied once, by the taker
    finally:
        store.close()
    tasks = [t.task.key for t in crm.tasks()]
    assert len(tasks) == len(set(tasks)) == 10
