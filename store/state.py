"""``StateStore``: the worker's durable memory, one transaction per method.

What must be atomic is atomic: a pulled batch and the cursor after it; an apply batch's outcomes and the
mirror's write-through of their effects. Leases (one per account) let several workers share one
PostgreSQL database without two cycles on the same account.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from policies.model import Deal, Owner
from store import claims as claims_q
from store import ledger as ledger_q
from store import mirror as mirror_q
from store.database import dumps, insert_if_absent, loads, open_engine, upgrade
from store.schema import accounts, cursors, leases, owners, runs


@dataclass(frozen=True, slots=True)
class CursorState:
    cursor: Mapping[str, str] | None
    updated_at: datetime | None
    last_full_pull_at: datetime | None
    full_pull_run: str | None  # a full pull that started and did not finish


@dataclass(frozen=True, slots=True)
class Blocked:
    reason: str
    fingerprint: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: str
    account: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    shadow: bool
    counts: Mapping[str, int]
    api_calls: int
    error: str | None
    api_daily_limit: int | None = None


P = ParamSpec("P")
R = TypeVar("R")


def _in_transaction(
    query: Callable[Concatenate[sa.Connection, P], R],
) -> Callable[Concatenate[StateStore, P], R]:
    """A ``StateStore`` method that runs ``query`` (of ``store/ledger.py``, ``claims.py``, ``mirror.py``) in
    one transaction of its own, committed when it returns; the method takes the query's other arguments."""

    def method(self: StateStore, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self.engine.begin() as c:
            return query(c, *args, **kwargs)

    method.__doc__ = query.__doc__
    return method


class StateStore:
    """Mirror, cursors, ledger, audit, runs and leases over SQLAlchemy Core; migrates the schema on open."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int | None = None,
        idle_in_transaction_timeout: timedelta | None = None,
    ) -> None:
        """``pool_size``: connections kept for this process (PostgreSQL; ``serve`` sizes it to its cycles).

        ``idle_in_transaction_timeout`` (PostgreSQL; the setting ``store.idle_in_transaction_timeout``): the
        server ends a session of this store that sits that long inside a transaction, so a process frozen
        mid-transaction cannot hold other workers' rows; the next use raises ``StoreUnavailable``.
        """
        self.url = url
        self.engine = open_engine(
            url, pool_size=pool_size, idle_in_transaction_timeout=idle_in_transaction_timeout
        )
        try:
            upgrade(self.engine)
        except BaseException:  # e.g. RecreateStore: no connection is left open behind the error
            self.engine.dispose()
            raise

    def close(self) -> None:
        self.engine.dispose()

    # ---------------------------------------------------------------------------------- accounts, leases

    def ensure_account(self, name: str, crm: str, now: datetime) -> None:
        """Record the account if it is new; race-free when several workers start at once."""
        with self.engine.begin() as c:
            c.execute(insert_if_absent(c, accounts, ("name",)).values(name=name, crm=crm, created_at=now))

    def blocked(self, name: str) -> Blocked | None:
        with self.engine.connect() as c:
            row = c.execute(sa.select(accounts).where(accounts.c.name == name)).first()
        if row is None or row.blocked_reason is None:
            return None
        return Blocked(row.blocked_reason, row.blocked_fingerprint, row.blocked_at)

    def block_account(self, name: str, reason: str, fingerprint: str | None, now: datetime) -> None:
        with self.engine.begin() as c:
            c.execute(
                sa.update(accounts)
                .where(accounts.c.name == name)
                .values(blocked_reason=reason, blocked_fingerprint=fingerprint, blocked_at=now)
            )

    def unblock_account(self, name: str) -> None:
        with self.engine.begin() as c:
            c.execute(
                sa.update(accounts)
                .where(accounts.c.name == name)
                .values(blocked_reason=None, blocked_fingerprint=None, blocked_at=None)
            )

    def acquire_lease(
        self, account: str, holder: str, now: datetime, ttl: timedelta, *, take_over: str | None = None
    ) -> bool:
        """Take (or renew) the account's lease unless another live holder has it.

        ``take_over`` names a holder known to be dead (a killed process on this host): its lease is taken
        at once instead of waiting for it to expire.
        """
        with self.engine.begin() as c:
            free = sa.or_(leases.c.holder == holder, leases.c.expires_at < now)
            if take_over is not None:
                free = sa.or_(free, leases.c.holder == take_over)
            taken = c.execute(
                sa.update(leases)
                .where(leases.c.account == account, free)
                .values(holder=holder, acquired_at=now, expires_at=now + ttl)
            )
            if taken.rowcount == 1:
                return True
            try:
                with c.begin_nested():
                    c.execute(
                        sa.insert(leases).values(
                            account=account, holder=holder, acquired_at=now, expires_at=now + ttl
                        )
                    )
            except IntegrityError:
                return False
            return True

    def lease_holder(self, account: str) -> tuple[str, datetime] | None:
        with self.engine.connect() as c:
            row = c.execute(sa.select(leases).where(leases.c.account == account)).first()
        return None if row is None else (row.holder, row.expires_at)

    def release_lease(self, account: str, holder: str) -> None:
        with self.engine.begin() as c:
            c.execute(sa.delete(leases).where(leases.c.account == account, leases.c.holder == holder))

    def record_owners(self, account: str, found: Collection[Owner], now: datetime) -> None:
        """The CRM's owners as a cycle read them (names, teams, zones: for the report); replaces the old."""
        with self.engine.begin() as c:
            c.execute(sa.delete(owners).where(owners.c.account == account))
            if found:
                c.execute(
                    sa.insert(owners),
                    [
                        {
                            "account": account,
                            "owner_id": o.id,
                            "name": o.name[:200],
                            "team": o.team[:200] if o.team else None,
                            "time_zone": o.time_zone,
                            "active": o.active,
                            "updated_at": now,
                        }
                        for o in found
                    ],
                )

    def owners(self, account: str) -> dict[str, Owner]:
        with self.engine.connect() as c:
            rows = c.execute(sa.select(owners).where(owners.c.account == account))
            return {
                r.owner_id: Owner(r.owner_id, r.name, time_zone=r.time_zone, team=r.team, active=r.active)
                for r in rows
            }

    # ---------------------------------------------------------------------------------- cursors, mirror

    def cursor_state(self, account: str) -> CursorState:
        with self.engine.connect() as c:
            row = c.execute(sa.select(cursors).where(cursors.c.account == account)).first()
        if row is None:
            return CursorState(None, None, None, None)
        return CursorState(loads(row.cursor), row.updated_at, row.last_full_pull_at, row.full_pull_run)

    def begin_full_pull(self, account: str, run_id: str, now: datetime) -> None:
        """Mark a full pull as begun; the cursor is cleared, so from now on it is this pull's resume point."""
        with self.engine.begin() as c:
            self._set_cursor(c, account, {"cursor": None, "full_pull_run": run_id, "updated_at": now})

    def store_batch(
        self,
        account: str,
        run_id: str,
        keep: Sequence[Deal],
        drop_ids: Collection[str],
        cursor: Mapping[str, str],
        now: datetime,
        restamped: Mapping[str, datetime] | None = None,
    ) -> None:
        """One pulled batch: its deals into the mirror, new stamps of unchanged mirrored deals (an echo of
        our own writes) and its cursor, in one transaction."""
        with self.engine.begin() as c:
            mirror_q.write_deals(c, account, keep, run_id)
            mirror_q.delete_deals(c, account, drop_ids)
            if restamped:
                mirror_q.restamp(c, account, restamped)
            self._set_cursor(c, account, {"cursor": dumps(dict(cursor)), "updated_at": now})

    def finish_full_pull(self, account: str, run_id: str, now: datetime) -> int:
        """Drop mirror rows the completed full pull did not see; returns how many."""
        with self.engine.begin() as c:
            dropped = mirror_q.drop_unseen(c, account, run_id)
            self._set_cursor(c, account, {"full_pull_run": None, "last_full_pull_at": now, "updated_at": now})
        return dropped

    def _set_cursor(self, c: sa.Connection, account: str, values: dict[str, Any]) -> None:
        updated = c.execute(sa.update(cursors).where(cursors.c.account == account).values(**values))
        if updated.rowcount == 0:
            c.execute(sa.insert(cursors).values(account=account, **values))

    mirror_count = _in_transaction(mirror_q.count)
    mirror_deals = _in_transaction(mirror_q.read_deals)
    mirror_stamps = _in_transaction(mirror_q.read_stamps)

    def iter_mirror(self, account: str, chunk_size: int) -> Iterator[list[Deal]]:
        return mirror_q.iter_owner_chunks(self.engine, account, chunk_size)

    def write_mirror(self, account: str, deals: Sequence[Deal], drop_ids: Collection[str] = ()) -> None:
        with self.engine.begin() as c:
            mirror_q.write_deals(c, account, deals, None)
            mirror_q.delete_deals(c, account, drop_ids)

    # ---------------------------------------------------------------------------------- ledger, audit

    ledger_statuses = _in_transaction(ledger_q.statuses)
    pending_intents = _in_transaction(ledger_q.pending_intents)
    record_actions = _in_transaction(ledger_q.record)

    def record_results(
        self,
        account: str,
        results: Sequence[ledger_q.Result],
        mirror_after: Sequence[Deal],
        now: datetime,
        mirror_drop: Collection[str] = (),
    ) -> None:
        """Outcomes of an apply batch and the mirror's write-through of their effects, in one transaction."""
        with self.engine.begin() as c:
            ledger_q.record_results(c, account, results, now)
            mirror_q.write_deals(c, account, mirror_after, None)
            mirror_q.delete_deals(c, account, mirror_drop)

    ledger = _in_transaction(ledger_q.entries)
    record_audit = _in_transaction(ledger_q.write_audit)
    audit = _in_transaction(ledger_q.read_audit)

    # ---------------------------------------------------------------------------------- the fleet

    register_accounts = _in_transaction(claims_q.register)
    unschedule = _in_transaction(claims_q.unscheduled)
    claim_due = _in_transaction(claims_q.claim_due)

    def renew_leases(self, holder: str, held: Mapping[str, timedelta], now: datetime) -> set[str]:
        """Heartbeat: extend ``holder``'s leases; returns the accounts it lost."""
        if not held:
            return set()
        with self.engine.begin() as c:
            return claims_q.renew(c, holder, held, now)

    complete_claim = _in_transaction(claims_q.complete)
    release_leases = _in_transaction(claims_q.release_all)
    expire_leases = _in_transaction(claims_q.expire_all)
    next_due_at = _in_transaction(claims_q.next_due)
    holders = _in_transaction(claims_q.holders)
    worker_started = _in_transaction(claims_q.worker_started)
    worker_heartbeat = _in_transaction(claims_q.worker_heartbeat)
    worker_gone = _in_transaction(claims_q.worker_gone)
    account_statuses = _in_transaction(claims_q.account_statuses)
    worker_statuses = _in_transaction(claims_q.worker_statuses)

    # ---------------------------------------------------------------------------------- runs

    def start_run(
        self,
        run_id: str,
        account: str,
        holder: str,
        shadow: bool,
        now: datetime,
        *,
        due_at: datetime | None = None,
    ) -> None:
        with self.engine.begin() as c:
            c.execute(
                sa.insert(runs).values(
                    id=run_id,
                    account=account,
                    holder=holder,
                    started_at=now,
                    status="running",
                    shadow=shadow,
                    due_at=due_at,
                )
            )

    def note_run_api_calls(self, run_id: str, api_calls: int) -> None:
        """The API calls a running cycle has made so far (a crash then still counts against the budget)."""
        with self.engine.begin() as c:
            c.execute(sa.update(runs).where(runs.c.id == run_id).values(api_calls=api_calls))

    api_calls_since = _in_transaction(claims_q.api_calls_since)

    def mark_abandoned_runs(self, account: str, now: datetime) -> int:
        """Runs still "running" when their account's lease is ours were cut short (a crash): say so."""
        with self.engine.begin() as c:
            result = c.execute(
                sa.update(runs)
                .where(runs.c.account == account, runs.c.status == "running")
                .values(status="crashed", finished_at=now)
            )
        return result.rowcount

    def finish_run(
        self,
        run_id: str,
        status: str,
        counts: Mapping[str, int],
        api_calls: int,
        error: str | None,
        now: datetime,
        *,
        api_daily_limit: int | None = None,
    ) -> None:
        with self.engine.begin() as c:
            c.execute(
                sa.update(runs)
                .where(runs.c.id == run_id)
                .values(
                    status=status,
                    counts=dumps(dict(counts)),
                    api_calls=api_calls,
                    error=error,
                    finished_at=now,
                    api_daily_limit=api_daily_limit,
                )
            )

    def runs(self, account: str, *, limit: int = 20) -> list[RunRecord]:
        with self.engine.connect() as c:
            rows = c.execute(
                sa.select(runs)
                .where(runs.c.account == account)
                .order_by(runs.c.started_at.desc(), runs.c.id.desc())
                .limit(limit)
            )
            return [
                RunRecord(
                    r.id,
                    r.account,
                    r.started_at,
                    r.finished_at,
                    r.status,
                    r.shadow,
                    loads(r.counts),
                    r.api_calls,
                    r.error,
                    r.api_daily_limit,
                )
                for r in rows
            ]


__all__ = ["Blocked", "CursorState", "RunRecord", "StateStore"]
