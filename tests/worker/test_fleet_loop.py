"""The fleet loop (sync/fleet.py) in one process: claims, bounded concurrency, heartbeats, stop.

The cycles here are stand-ins that record when they ran (the real cycle is tested elsewhere; the real
processes in tests/fleet). Time is real: the loop waits, renews and expires leases on the wall clock.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from store import StateStore
from store.claims import Claim
from store.database import StoreUnavailable
from store.schema import leases
from sync.fleet import FleetOptions, FleetWorker
from tests.log_capture import captured_events


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Recorder:
    """A stand-in cycle: sleeps ``seconds`` (or until told to stop) and records who ran what, when."""

    seconds: float = 0.05
    runs: list[tuple[str, str, float, float]] = field(default_factory=list)  # account, worker, start, end
    running: dict[str, int] = field(default_factory=dict)
    peak: dict[str, int] = field(default_factory=dict)
    stopped: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def for_worker(self, worker: str) -> Callable[[Claim, Callable[[], bool]], str]:
        def run(claim: Claim, should_stop: Callable[[], bool]) -> str:
            with self.lock:
                self.running[worker] = self.running.get(worker, 0) + 1
                self.peak[worker] = max(self.peak.get(worker, 0), self.running[worker])
            start = time.monotonic()
            status = "ok"
            while time.monotonic() - start < self.seconds:
                if should_stop():
                    status = "stopped"
                    with self.lock:
                        self.stopped.append(claim.account)
                    break
                time.sleep(0.01)
            with self.lock:
                self.running[worker] -= 1
                self.runs.append((claim.account, worker, start, time.monotonic()))
            return status

        return run


def every(seconds: float) -> Callable[[str, datetime, datetime], datetime]:
    return lambda _account, _previous, at: at + timedelta(seconds=seconds)


def worker(
    store: StateStore,
    name: str,
    recorder: Recorder,
    stop: threading.Event,
    *,
    max_cycles: int = 2,
    ttl: timedelta = timedelta(seconds=30),
    heartbeat: timedelta = timedelta(seconds=10),
    next_due: Callable[[str, datetime, datetime], datetime | None] | None = None,
) -> FleetWorker:
    return FleetWorker(
        store,
        name,
        run=recorder.for_worker(name),
        next_due=next_due or every(0.2),
        lease_ttl=lambda _account: ttl,
        clock=now,
        stop=stop,
        options=FleetOptions(
            max_cycles=max_cycles, poll_interval=timedelta(seconds=0.05), heartbeat_every=heartbeat
        ),
    )


def serve_for(workers: list[FleetWorker], stop: threading.Event, seconds: float) -> list[bool]:
    results: list[bool] = []
    threads = [threading.Thread(target=lambda w=w: results.append(w.serve())) for w in workers]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for w in workers:
        w.wake()
    for thread in threads:
        thread.join(timeout=30)
    return results


def overlaps(runs: list[tuple[str, str, float, float]]) -> list[str]:
    """Accounts with two runs at the same time."""
    found = []
    by_account: dict[str, list[tuple[float, float]]] = {}
    for account, _, start, end in runs:
        by_account.setdefault(account, []).append((start, end))
    for account, spans in by_account.items():
        spans.sort()
        if any(b[0] < a[1] for a, b in itertools.pairwise(spans)):
            found.append(account)
    return found


@pytest.mark.slow
def test_workers_share_the_accounts_one_cycle_per_account_at_a_time(store: StateStore) -> None:
    """Two workers (PostgreSQL) or one (SQLite) over ten accounts due every 0.2 s: every account runs
    again and again, never twice at once, no worker above its slots; a stop leaves no lease behind."""
    names = [f"acct-{i}" for i in range(10)]
    store.register_accounts(dict.fromkeys(names, "hubspot"), now())
    recorder = Recorder(seconds=0.05)
    stop = threading.Event()
    count = 1 if store.engine.dialect.name == "sqlite" else 2
    workers = [worker(store, f"w:{n}", recorder, stop, max_cycles=3) for n in range(count)]
    assert serve_for(workers, stop, 3.0) == [True] * count
    ran: dict[str, int] = {}
    for account, _, _, _ in recorder.runs:
        ran[account] = ran.get(account, 0) + 1
    assert sorted(ran) == names
    assert min(ran.values()) >= 2
    assert overlaps(recorder.runs) == []
    assert max(recorder.peak.values()) <= 3
    if count == 2:
        assert {w for _, w, _, _ in recorder.runs} == {"w:0", "w:1"}
    assert [s.holder for s in store.account_statuses()] == [None] * 10
    assert store.worker_statuses() == []


def test_a_stop_hands_an_unfinished_cycle_back_due_at_once(store: StateStore) -> None:
    """SIGTERM mid-cycle: the cycle stops, its lease is released and the account is due right away, so
    another worker (or the next start) resumes it instead of waiting for its next scheduled time."""
    store.register_accounts({"slow": "hubspot"}, now())
    recorder = Recorder(seconds=60)
    stop = threading.Event()
    w = worker(store, "w:1", recorder, stop, next_due=every(3600))
    thread = threading.Thread(target=w.serve)
    thread.start()
    deadline = time.monotonic() + 30
    while not recorder.running.get("w:1") and time.monotonic() < deadline:
        time.sleep(0.01)
    stopped_at = now()
    stop.set()
    w.wake()
    thread.join(timeout=30)
    assert recorder.stopped == ["slow"]
    status = store.account_statuses(["slow"])[0]
    assert status.holder is None
    assert status.next_due_at is not None
    assert status.next_due_at <= now()
    assert status.next_due_at >= stopped_at


@pytest.mark.slow
def test_the_heartbeat_keeps_a_long_cycle_s_lease_alive(store: StateStore) -> None:
    """A cycle that lasts four lease TTLs without renewing on its own (a CRM call waiting out a rate limit)
    keeps its account: the heartbeat renews the lease, so a second worker never starts it meanwhile.
    Without heartbeats the lease would expire after 0.5 s and the second worker would take over."""
    if store.engine.dialect.name == "sqlite":
        pytest.skip("two workers share PostgreSQL only")
    store.register_accounts({"slow": "hubspot"}, now())
    recorder = Recorder(seconds=2.0)
    stop = threading.Event()
    ttl, beat = timedelta(seconds=0.5), timedelta(seconds=0.1)
    first = worker(store, "w:1", recorder, stop, ttl=ttl, heartbeat=beat, next_due=every(3600))
    second = worker(store, "w:2", recorder, stop, ttl=ttl, heartbeat=beat, next_due=every(3600))
    assert serve_for([first, second], stop, 3.0) == [True, True]
    # one cycle, by whichever worker claimed it first; the other never started it while it ran
    assert [account for account, _, _, _ in recorder.runs] == ["slow"]


def test_a_lost_lease_stops_the_cycle(store: StateStore) -> None:
    """When the heartbeat finds the lease gone (this process was paused past its TTL and another worker
    took the account over), the cycle is told to stop and the taker's schedule is left alone."""
    store.register_accounts({"paused": "hubspot"}, now())
    recorder = Recorder(seconds=30)
    stop = threading.Event()
    w = worker(store, "w:1", recorder, stop, heartbeat=timedelta(seconds=0.05), next_due=every(3600))
    thread = threading.Thread(target=w.serve)
    thread.start()
    deadline = time.monotonic() + 30
    while not recorder.running.get("w:1") and time.monotonic() < deadline:
        time.sleep(0.01)
    with store.engine.begin() as connection:  # w:2 took it over after a pause longer than the TTL
        connection.execute(
            leases.update()
            .where(leases.c.account == "paused")
            .values(holder="w:2", expires_at=now() + timedelta(minutes=5))
        )
    deadline = time.monotonic() + 30
    while not recorder.stopped and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    w.wake()
    thread.join(timeout=30)
    assert recorder.stopped == ["paused"]
    held = store.lease_holder("paused")
    assert held is not None
    assert held[0] == "w:2"
    assert store.account_statuses(["paused"])[0].next_due_at is not None


class _SessionsEnded(StateStore):
    """A store whose sessions the server ended once each while this process was frozen: the first claim and
    the first heartbeat fail with ``StoreUnavailable``, as they do on a real PostgreSQL store
    (tests/worker/test_frozen_transaction.py shows the real thing)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.failed: set[str] = set()

    def _once(self, what: str) -> None:
        if what not in self.failed:
            self.failed.add(what)
            raise StoreUnavailable(f"the state store connection was lost ({what})")

    def claim_due(self, *args: Any, **kwargs: Any) -> list[Claim]:
        self._once("claim")
        return super().claim_due(*args, **kwargs)

    def renew_leases(self, *args: Any, **kwargs: Any) -> set[str]:
        self._once("heartbeat")
        return super().renew_leases(*args, **kwargs)


def test_a_worker_whose_sessions_were_ended_keeps_serving_and_names_the_lease_it_lost(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a freeze: a failed claim and a failed heartbeat are tried again (logged without a traceback, no
    bug), and a cycle whose account another worker took meanwhile ends with ``lease_lost`` (completing it
    changes nothing) while the worker goes on claiming."""
    import sync.fleet

    store = _SessionsEnded(f"sqlite:///{tmp_path / 'state.sqlite'}")
    store.register_accounts({"a": "hubspot", "b": "hubspot"}, now())
    recorder = Recorder(seconds=0.3)
    stop = threading.Event()

    def run(claim: Claim, should_stop: Callable[[], bool]) -> str:
        if claim.account == "a" and not recorder.stopped:  # its first cycle: another worker takes it over
            recorder.stopped.append("a")
            assert store.acquire_lease("a", "other:2", now(), timedelta(minutes=1), take_over="me:1")
            return "ok"
        return recorder.for_worker("me:1")(claim, should_stop)

    fleet = FleetWorker(
        store,
        "me:1",
        run=run,
        next_due=every(0.2),
        lease_ttl=lambda _account: timedelta(seconds=30),
        clock=now,
        stop=stop,
        options=FleetOptions(
            max_cycles=2, poll_interval=timedelta(seconds=0.05), heartbeat_every=timedelta(seconds=0.1)
        ),
    )
    try:
        with captured_events(monkeypatch, sync.fleet) as logged:
            assert serve_for([fleet], stop, 1.5) == [True]
    finally:
        store.close()
    by_event = {e["event"]: e for e in logged}
    assert store.failed == {"claim", "heartbeat"}
    for event in ("fleet_poll_failed", "heartbeat_failed"):
        assert "connection was lost" in by_event[event]["error"]
        assert "exc_info" not in by_event[event]
    assert [e["account"] for e in logged if e["event"] == "lease_lost"] == ["a"]
    assert {account for account, *_ in recorder.runs} == {"b"}  # a is the other worker's now
    assert len(recorder.runs) >= 2  # b again and again: the worker kept serving
