"""Work distribution in the state store: due accounts are claimed once, leases are renewed, expire and end.

On SQLite and PostgreSQL alike (the ``store`` fixture); the race of many claimers at once runs on
PostgreSQL, where ``FOR UPDATE SKIP LOCKED`` and the lease insert are what keeps a claim exclusive.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from store import StateStore
from store.solo import AnotherWorker, single_worker
from tests.worker.conftest import T0

TTL = timedelta(minutes=1)


def ttl(_account: str) -> timedelta:
    return TTL


def test_registering_schedules_new_accounts_now_and_keeps_the_others_due_time(store: StateStore) -> None:
    """A new account is due at once; an account already scheduled keeps its due time across restarts."""
    assert store.register_accounts({"a": "hubspot", "b": "salesforce"}, T0) == 2
    store.claim_due("w:1", T0, 10, ttl)
    store.complete_claim("a", "w:1", T0 + timedelta(hours=1))
    store.complete_claim("b", "w:1", T0 + timedelta(hours=2))
    assert store.register_accounts({"a": "hubspot", "b": "salesforce", "c": "hubspot"}, T0) == 1
    due = {s.account: s.next_due_at for s in store.account_statuses()}
    assert due == {"a": T0 + timedelta(hours=1), "b": T0 + timedelta(hours=2), "c": T0}


def test_due_accounts_are_claimed_oldest_first_up_to_the_limit(store: StateStore) -> None:
    """Only due accounts, the longest overdue first, at most ``limit``; each claim is the account's lease."""
    store.register_accounts(dict.fromkeys("abcd", "hubspot"), T0)
    store.claim_due("setup:1", T0, 4, ttl)
    for name, minutes in zip("abcd", (30, 10, 20, 90), strict=True):
        store.complete_claim(name, "setup:1", T0 + timedelta(minutes=minutes))
    now = T0 + timedelta(minutes=60)
    claims = store.claim_due("w:1", now, 2, ttl)
    assert [c.account for c in claims] == ["b", "c"]  # d is not due; a is due but later than b and c
    assert [c.due_at for c in claims] == [T0 + timedelta(minutes=10), T0 + timedelta(minutes=20)]
    assert not any(c.interrupted for c in claims)
    assert store.lease_holder("b") == ("w:1", now + TTL)
    assert [c.account for c in store.claim_due("w:2", now, 5, ttl)] == ["a"]  # b, c are held
    assert store.claim_due("w:3", now, 5, ttl) == []


def test_a_completed_claim_moves_the_due_time_and_drops_the_lease_together(store: StateStore) -> None:
    """After a cycle the account is not due again before its next due time, and nobody holds it."""
    store.register_accounts({"a": "hubspot"}, T0)
    assert [c.account for c in store.claim_due("w:1", T0, 1, ttl)] == ["a"]
    assert store.complete_claim("a", "w:1", T0 + timedelta(minutes=15))
    assert store.lease_holder("a") is None
    assert store.claim_due("w:2", T0 + timedelta(minutes=14), 1, ttl) == []
    assert [c.account for c in store.claim_due("w:2", T0 + timedelta(minutes=15), 1, ttl)] == ["a"]


def test_completing_a_claim_another_worker_took_over_changes_nothing(store: StateStore) -> None:
    """A worker paused past its lease must not move the schedule of the worker that took the account."""
    store.register_accounts({"a": "hubspot"}, T0)
    store.claim_due("w:1", T0, 1, ttl)
    later = T0 + TTL + timedelta(seconds=1)
    taken = store.claim_due("w:2", later, 1, ttl)
    assert [(c.account, c.interrupted) for c in taken] == [("a", True)]
    assert not store.complete_claim("a", "w:1", T0 + timedelta(days=9))
    assert store.lease_holder("a") == ("w:2", later + TTL)
    assert store.account_statuses(["a"])[0].next_due_at == T0


def test_an_expired_lease_is_claimable_at_once_and_first(store: StateStore) -> None:
    """A holder that stopped renewing (died) leaves its account claimable before its next due time,
    ahead of accounts that are merely due."""
    store.register_accounts({"crashed": "hubspot", "due": "hubspot"}, T0)
    store.claim_due("dead:1", T0, 2, ttl)
    store.complete_claim("due", "dead:1", T0 + timedelta(seconds=30))
    now = T0 + timedelta(seconds=29)
    assert store.claim_due("w:2", now, 2, ttl) == []  # the lease is live, due is not due yet
    now = T0 + TTL + timedelta(seconds=1)
    claims = store.claim_due("w:2", now, 1, ttl)
    assert [(c.account, c.interrupted, c.due_at) for c in claims] == [("crashed", True, T0)]
    assert [c.account for c in store.claim_due("w:2", now, 1, ttl)] == ["due"]


def test_heartbeats_extend_the_leases_and_report_the_lost_ones(store: StateStore) -> None:
    """Renewing keeps the leases past their first TTL; a lease another holder took over is reported lost."""
    store.register_accounts({"a": "hubspot", "b": "hubspot"}, T0)
    store.claim_due("w:1", T0, 2, ttl)
    beat = T0 + timedelta(seconds=50)
    assert store.renew_leases("w:1", {"a": TTL, "b": TTL}, beat) == set()
    assert store.claim_due("w:2", T0 + timedelta(seconds=70), 2, ttl) == []  # renewed: still live
    store.expire_leases("w:1", T0 + timedelta(seconds=71))
    store.claim_due("w:2", T0 + timedelta(seconds=71), 1, ttl)  # takes one of them over
    lost = store.renew_leases("w:1", {"a": TTL, "b": TTL}, T0 + timedelta(seconds=72))
    assert len(lost) == 1


def test_a_stopping_worker_releases_every_lease_and_its_row(store: StateStore) -> None:
    store.register_accounts({"a": "hubspot", "b": "hubspot"}, T0)
    store.worker_started("w:1", T0, 4)
    store.claim_due("w:1", T0, 2, ttl)
    assert [(w.holder, w.leases) for w in store.worker_statuses()] == [("w:1", 2)]
    assert sorted(store.release_leases("w:1")) == ["a", "b"]
    store.worker_gone("w:1")
    assert store.worker_statuses() == []
    assert store.holders() == []


def test_api_calls_since_sums_every_run_of_the_account(store: StateStore) -> None:
    """The daily budget's input: calls of finished and running cycles since a time, of that account only."""
    store.start_run("r1", "a", "w:1", False, T0)
    store.finish_run("r1", "ok", {}, 40, None, T0 + timedelta(minutes=1))
    store.start_run("r2", "a", "w:2", False, T0 + timedelta(hours=2))
    store.note_run_api_calls("r2", 7)  # still running (or its worker died)
    store.start_run("r3", "b", "w:1", False, T0 + timedelta(hours=2))
    store.finish_run("r3", "ok", {}, 1000, None, T0 + timedelta(hours=3))
    assert store.api_calls_since("a", T0) == 47
    assert store.api_calls_since("a", T0 + timedelta(hours=1)) == 7
    assert store.api_calls_since("c", T0) == 0


@pytest.mark.slow
def test_many_workers_claiming_at_once_never_claim_one_account_twice(postgres_url: str) -> None:
    """Eight claimers on eight connections, racing over 60 due accounts: every account claimed exactly
    once (PostgreSQL: SKIP LOCKED spreads them, the lease insert keeps each claim exclusive)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    store = StateStore(postgres_url, pool_size=10)
    try:
        store.register_accounts({f"acct-{i:02d}": "hubspot" for i in range(60)}, T0)
        barrier = threading.Barrier(8)
        claimed: Counter[str] = Counter()
        by_holder: Counter[str] = Counter()
        lock = threading.Lock()

        def claimer(n: int) -> None:
            barrier.wait()
            while True:
                got = store.claim_due(f"w:{n}", T0, 3, ttl)
                if not got:
                    return
                with lock:
                    claimed.update(c.account for c in got)
                    by_holder[f"w:{n}"] += len(got)

        threads = [threading.Thread(target=claimer, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(claimed) == 60
        assert set(claimed.values()) == {1}
        assert len(by_holder) > 1  # the work was spread, not taken by whoever came first
    finally:
        store.close()


_HOLD_LOCK = """
import sys, time
from store.solo import single_worker
with single_worker(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_serve_on_one_sqlite_file_is_refused_until_the_first_is_gone(tmp_path: Path) -> None:
    """SQLite serves one worker process: the lock names the holder's pid and dies with its process."""
    url = f"sqlite:///{tmp_path / 'state' / 'followup.sqlite'}"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, url],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(AnotherWorker, match=f"pid {holder.pid}\\)"), single_worker(url):
            pass
    finally:
        holder.kill()
        holder.communicate()
    with single_worker(url):  # the kernel dropped the dead process's lock
        pass
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700
