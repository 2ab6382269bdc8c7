"""One ``followup serve`` process's share of the fleet: claim due accounts, run their cycles, keep the leases.

Every worker sharing a state store runs this loop; nothing is configured per worker, so adding a worker
spreads the load and removing one hands its accounts to the others:

1. **Claim.** With free cycle slots (``max_cycles``), claim that many due accounts in one transaction
   (``store/claims.py``: ``FOR UPDATE SKIP LOCKED``, then the account's lease). An account is due when its
   ``next_due_at`` (in the store, so every worker agrees) has passed, or at once when a lease of another
   holder expired without its cycle ending: that worker died, and this cycle resumes its work (the cycle
   recovers the ledger's open intents before anything else). A holder on this host whose process is gone
   is recognised at once, without waiting for its leases to expire.
2. **Run** each claimed cycle on a thread of its own (at most ``max_cycles`` at a time).
3. **Heartbeat.** A thread renews every lease this worker holds, at least every third of the shortest
   lease TTL, also while a cycle waits minutes on a slow or rate-limited CRM call (the cycle itself renews
   only between batches). A lease found lost (this process was paused past its TTL and another worker took
   the account) stops that cycle at its next batch boundary. A process paused in the middle of a
   transaction does not hold the others up: the server ends that session after
   ``store.idle_in_transaction_timeout`` (``store/database.py``), and when the process resumes the failed
   transaction ends its cycle ``retry_later``, a failed heartbeat or poll is tried again, and ``lease_lost``
   says which accounts another worker has taken in the meantime.
4. **Complete.** When a cycle ends, the account's next due time (from its trigger, anchored on the due time
   it served: missed runs coalesce into the one that ran) and the release of its lease commit together.
   A cycle cut short by a stop is due again at once, so another worker resumes it.
5. **Stop** (SIGTERM): no new claims; cycles in flight stop at their next batch boundary and complete as
   above; every lease left is released; the worker's row is removed.

The trigger arithmetic (APScheduler's) and the cycle itself are injected by the composition root.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from store import StateStore
from store.claims import Claim
from store.database import StoreUnavailable
from sync.leases import dead_on_this_host

log = structlog.get_logger(__name__)

# A claimed cycle: (claim, should_stop) -> the cycle's status (``stopped`` when it stopped early).
RunClaim = Callable[[Claim, Callable[[], bool]], str]
# (account, due time served, now) -> when the account is next due; None takes it off the schedule.
NextDue = Callable[[str, datetime, datetime], datetime | None]


@dataclass(frozen=True, slots=True)
class FleetOptions:
    max_cycles: int = 4  # cycles this process runs at a time
    poll_interval: timedelta = timedelta(seconds=5)  # the longest an idle worker waits before looking again
    heartbeat_every: timedelta = timedelta(seconds=30)  # lease renewal period (a third of the shortest TTL)
    stop_timeout: timedelta = timedelta(minutes=10)  # how long a stop waits for the cycles in flight


class FleetMetrics:
    """What the loop reports (``sync.metrics.WorkerMetrics`` implements it; the default reports nothing)."""

    def claimed(self, claim: Claim) -> None:
        """An account was claimed."""

    def leases_held(self, count: int) -> None:
        """How many accounts this worker holds now."""


@dataclass
class _Flight:
    claim: Claim
    ttl: timedelta
    lost: threading.Event = field(default_factory=threading.Event)


class FleetWorker:
    """The claim loop, the cycle threads and the heartbeat of one ``serve`` process."""

    def __init__(
        self,
        store: StateStore,
        holder: str,
        *,
        run: RunClaim,
        next_due: NextDue,
        lease_ttl: Callable[[str], timedelta],
        clock: Callable[[], datetime],
        stop: threading.Event,
        options: FleetOptions = FleetOptions(),
        metrics: FleetMetrics | None = None,
    ) -> None:
        self._store = store
        self._holder = holder
        self._run = run
        self._next_due = next_due
        self._ttl = lease_ttl
        self._clock = clock
        self._stop = stop
        self._options = options
        self._metrics = metrics or FleetMetrics()
        self._lock = threading.Lock()
        self._flights: dict[str, _Flight] = {}
        self._wake = threading.Event()
        self._idle = threading.Condition(self._lock)

    # ------------------------------------------------------------------------------------------ loop

    def wake(self) -> None:
        """Look for work now (and notice a stop): called on SIGTERM and when a cycle ends."""
        self._wake.set()

    def serve(self) -> bool:
        """Claim and run until ``stop`` is set; then wait for the cycles in flight (``True``: all ended)."""
        options = self._options
        self._store.worker_started(self._holder, self._clock(), options.max_cycles)
        heartbeat_stop = threading.Event()
        heartbeat = threading.Thread(
            target=self._heartbeat, args=(heartbeat_stop,), name="heartbeat", daemon=True
        )
        heartbeat.start()
        log.info("fleet_worker_started", holder=self._holder, max_cycles=options.max_cycles)
        try:
            while not self._stop.is_set():
                self._wake.clear()
                wait = self._poll()
                if not self._stop.is_set():
                    self._wake.wait(wait)
        finally:
            clean = self._drain(options.stop_timeout.total_seconds())
            heartbeat_stop.set()
            heartbeat.join(timeout=10)
            self._leave(clean)
        return clean

    def _poll(self) -> float:
        """Claim what is due for the free slots; the seconds to wait before looking again."""
        options = self._options
        poll = options.poll_interval.total_seconds()
        try:
            self._reap_dead_local_holders()
            with self._lock:
                free = options.max_cycles - len(self._flights)
            if free <= 0:
                return poll  # woken earlier when a cycle ends
            now = self._clock()
            claims = self._store.claim_due(self._holder, now, free, self._ttl)
            for claim in claims:
                self._start(claim)
            if len(claims) == free:
                return poll  # full: woken when a slot frees
            due = self._store.next_due_at(self._clock())
        except StoreUnavailable as exc:  # a lost session (a restart, a freeze) or a lock wait timed out
            log.warning("fleet_poll_failed", error=str(exc), retry_in_s=poll)
            return poll
        except Exception:  # the store is unreachable: keep the process, try again
            log.warning("fleet_poll_failed", exc_info=True, retry_in_s=poll)
            return poll
        if due is None:
            return poll
        return max(0.0, min(poll, (due - self._clock()).total_seconds()))

    def _reap_dead_local_holders(self) -> None:
        """Expire at once the leases of workers on this host whose process is gone (no TTL to wait)."""
        for holder in self._store.holders():
            if holder != self._holder and dead_on_this_host(holder):
                expired = self._store.expire_leases(holder, self._clock())
                self._store.worker_gone(holder)
                if expired:
                    log.warning("dead_worker_leases_expired", dead_holder=holder, accounts=expired)

    # ------------------------------------------------------------------------------------------ cycles

    def _start(self, claim: Claim) -> None:
        flight = _Flight(claim, self._ttl(claim.account))
        with self._lock:
            self._flights[claim.account] = flight
            held = len(self._flights)
        self._metrics.claimed(claim)
        self._metrics.leases_held(held)
        if claim.interrupted:
            log.warning("cycle_taken_over", account=claim.account, due_at=claim.due_at.isoformat())
        thread = threading.Thread(
            target=self._cycle, args=(flight,), name=f"cycle-{claim.account}", daemon=True
        )
        thread.start()

    def _cycle(self, flight: _Flight) -> None:
        claim = flight.claim
        status = "error"
        try:
            status = self._run(claim, lambda: self._stop.is_set() or flight.lost.is_set())
        except Exception:  # the run callable logs what it knows; never let one account stop the worker
            log.exception("cycle_crashed", account=claim.account)
        finally:
            self._complete(flight, status)

    def _complete(self, flight: _Flight, status: str) -> None:
        account = flight.claim.account
        try:
            if flight.lost.is_set():
                log.error("lease_lost", account=account, hint="another worker took the account over")
            else:
                now = self._clock()
                if status == "stopped" and self._stop.is_set():
                    next_due: datetime | None = now  # cut short by a stop: resume it at once, anywhere
                else:
                    next_due = self._next_due(account, flight.claim.due_at, now)
                if not self._store.complete_claim(account, self._holder, next_due):
                    log.error("lease_lost", account=account, hint="another worker took the account over")
        except StoreUnavailable as exc:  # as below; the lost connection says it all (no traceback)
            log.error("claim_not_completed", account=account, error=str(exc))  # noqa: TRY400 - no bug
        except Exception:  # the lease expires by itself and the account is resumed then
            log.exception("claim_not_completed", account=account)
        finally:
            with self._lock:
                self._flights.pop(account, None)
                held = len(self._flights)
                self._idle.notify_all()
            self._metrics.leases_held(held)
            self.wake()

    def _drain(self, timeout: float) -> bool:
        """Wait until no cycle is in flight (they stop at their next batch boundary)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._flights:
                left = deadline - time.monotonic()
                if left <= 0:
                    log.error("cycles_still_running_at_stop", accounts=sorted(self._flights))
                    return False
                self._idle.wait(min(left, 1.0))
        return True

    def _leave(self, clean: bool) -> None:
        """Release what is left (nothing after a clean stop) and remove this worker's row."""
        try:
            if clean:
                left = self._store.release_leases(self._holder)
                if left:
                    log.warning("leases_released_at_stop", accounts=left)
            self._store.worker_gone(self._holder)
        except Exception:
            log.exception("worker_leave_failed")

    # ------------------------------------------------------------------------------------------ heartbeat

    def _heartbeat(self, done: threading.Event) -> None:
        every = self._options.heartbeat_every.total_seconds()
        while not done.wait(every):
            with self._lock:
                held = {account: flight.ttl for account, flight in self._flights.items()}
            try:
                lost = self._store.renew_leases(self._holder, held, self._clock())
                self._store.worker_heartbeat(self._holder, self._clock())
            except StoreUnavailable as exc:  # e.g. this process was frozen past the store's idle timeout
                log.warning("heartbeat_failed", error=str(exc))
                continue
            except Exception:
                log.warning("heartbeat_failed", exc_info=True)
                continue
            with self._lock:
                flights = [self._flights[a] for a in lost if a in self._flights]
            for flight in flights:
                flight.lost.set()
