"""Work distribution in SQL: which accounts are due, who claims them, and how a claim is held and ended.

The pattern is the one PostgreSQL job queues use (solid_queue's claimed executions, pg-boss's and
procrastinate's fetch): in one transaction, select due rows ``ORDER BY`` due time ``LIMIT n FOR UPDATE
SKIP LOCKED`` (workers polling at the same moment take different rows instead of queueing behind each
other's locks), and record the claim before committing. The claim here is the account's lease row
(``leases``: holder, expiry), written only if no live holder has it, so a claim is exclusive whatever a
concurrent transaction saw. A holder keeps its claims alive with heartbeats (``renew``); one that dies stops
renewing and its leases expire, which is how solid_queue and pg-boss find the work of a dead process: an
expired lease still in the table marks a cycle that never ended, and that account is claimable at once
(``interrupted``), ahead of the merely due ones. A cycle that ends moves the account's ``next_due_at``
on and deletes its lease in one transaction (``complete``), so no other worker can slip in between.

Times are the worker's clock (``followup serve`` uses the machine's UTC time): keep hosts NTP-synced.
SQLite has no row locks (``FOR UPDATE`` compiles to nothing there); it serialises writers instead, and
serves one worker process (``store/solo.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store.database import insert_if_absent
from store.schema import accounts, cursors, leases, runs, workers


@dataclass(frozen=True, slots=True)
class Claim:
    """An account this worker now holds the lease of, to run one cycle."""

    account: str
    due_at: datetime  # the due time this cycle serves (the next one is computed from it)
    interrupted: bool  # a cycle of another holder ended without completing (its lease expired)


@dataclass(frozen=True, slots=True)
class AccountStatus:
    """One account as ``followup status`` shows it (from the store alone)."""

    account: str
    crm: str
    next_due_at: datetime | None
    holder: str | None
    lease_expires_at: datetime | None
    blocked_reason: str | None
    blocked_at: datetime | None
    cursor_updated_at: datetime | None
    last_full_pull_at: datetime | None
    last_run_status: str | None
    last_run_started_at: datetime | None
    last_run_finished_at: datetime | None
    last_run_due_at: datetime | None


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    holder: str
    started_at: datetime
    heartbeat_at: datetime
    max_cycles: int
    leases: int


def register(c: Connection, crms: Mapping[str, str], now: datetime) -> int:
    """Record the accounts (name -> crm) and schedule the unscheduled ones now; returns how many were."""
    for name, crm in crms.items():
        c.execute(insert_if_absent(c, accounts, ("name",)).values(name=name, crm=crm, created_at=now))
    scheduled = 0
    names = sorted(crms)
    for start in range(0, len(names), 500):
        result = c.execute(
            sa.update(accounts)
            .where(accounts.c.name.in_(names[start : start + 500]), accounts.c.next_due_at.is_(None))
            .values(next_due_at=now)
        )
        scheduled += result.rowcount
    return scheduled


def claim_due(
    c: Connection, holder: str, now: datetime, limit: int, ttl: Callable[[str], timedelta]
) -> list[Claim]:
    """Claim up to ``limit`` due accounts, each then leased to ``holder``: interrupted ones first, then by due
    time (oldest first)."""
    if limit <= 0:
        return []
    live = sa.exists().where(leases.c.account == accounts.c.name, leases.c.expires_at >= now)
    expired = sa.exists().where(leases.c.account == accounts.c.name, leases.c.expires_at < now)
    query = (
        sa.select(accounts.c.name, accounts.c.next_due_at, expired.label("interrupted"))
        .where(accounts.c.next_due_at.is_not(None), ~live, sa.or_(accounts.c.next_due_at <= now, expired))
        .order_by(expired.desc(), accounts.c.next_due_at, accounts.c.name)
        .limit(limit)
        .with_for_update(skip_locked=True, of=accounts)
    )
    claims: list[Claim] = []
    for name, due_at, interrupted in c.execute(query).all():
        if _take_lease(c, name, holder, now, ttl(name)):
            claims.append(Claim(name, due_at, bool(interrupted)))
    return claims


def _take_lease(c: Connection, account: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    """The lease of ``account`` for ``holder`` unless a live holder has it (the exclusive step)."""
    taken = c.execute(
        sa.update(leases)
        .where(leases.c.account == account, sa.or_(leases.c.expires_at < now, leases.c.holder == holder))
        .values(holder=holder, acquired_at=now, expires_at=now + ttl)
    )
    if taken.rowcount == 1:
        return True
    inserted = c.execute(  # RETURNING: psycopg reports no row count for INSERT ... ON CONFLICT DO NOTHING
        insert_if_absent(c, leases, ("account",))
        .values(account=account, holder=holder, acquired_at=now, expires_at=now + ttl)
        .returning(leases.c.account)
    )
    return inserted.first() is not None


def renew(c: Connection, holder: str, held: Mapping[str, timedelta], now: datetime) -> set[str]:
    """Extend ``holder``'s leases (account -> TTL); returns the accounts whose lease it no longer has."""
    by_ttl: dict[timedelta, list[str]] = {}
    for account, ttl in held.items():
        by_ttl.setdefault(ttl, []).append(account)
    for ttl, names in by_ttl.items():
        c.execute(
            sa.update(leases)
            .where(leases.c.account.in_(names), leases.c.holder == holder)
            .values(expires_at=now + ttl)
        )
    still = set(
        c.execute(
            sa.select(leases.c.account).where(leases.c.account.in_(list(held)), leases.c.holder == holder)
        ).scalars()
    )
    return set(held) - still


def complete(c: Connection, account: str, holder: str, next_due_at: datetime | None) -> bool:
    """End ``holder``'s claim: the account is next due at ``next_due_at`` (None: unscheduled), its lease
    is gone. Nothing changes if another holder has the lease by now (it took over, it will complete)."""
    mine = sa.exists().where(leases.c.account == account, leases.c.holder == holder)
    updated = c.execute(
        sa.update(accounts).where(accounts.c.name == account, mine).values(next_due_at=next_due_at)
    )
    c.execute(sa.delete(leases).where(leases.c.account == account, leases.c.holder == holder))
    return updated.rowcount == 1


def release_all(c: Connection, holder: str) -> list[str]:
    """Drop every lease ``holder`` still has (a stop, or a holder known to be dead); returns the accounts."""
    held = list(c.execute(sa.select(leases.c.account).where(leases.c.holder == holder)).scalars())
    c.execute(sa.delete(leases).where(leases.c.holder == holder))
    return held


def expire_all(c: Connection, holder: str, now: datetime) -> list[str]:
    """Expire ``holder``'s leases now (it is known dead): its accounts become claimable as interrupted."""
    held = list(c.execute(sa.select(leases.c.account).where(leases.c.holder == holder)).scalars())
    c.execute(
        sa.update(leases).where(leases.c.holder == holder).values(expires_at=now - timedelta(microseconds=1))
    )
    return held


def next_due(c: Connection, now: datetime) -> datetime | None:
    """The earliest due time among accounts nobody holds (None: nothing scheduled)."""
    live = sa.exists().where(leases.c.account == accounts.c.name, leases.c.expires_at >= now)
    return c.execute(
        sa.select(sa.func.min(accounts.c.next_due_at)).where(accounts.c.next_due_at.is_not(None), ~live)
    ).scalar()


def holders(c: Connection) -> list[str]:
    """Every holder with a lease or a worker row (to find the ones that died on this host)."""
    leased = c.execute(sa.select(leases.c.holder).distinct()).scalars()
    registered = c.execute(sa.select(workers.c.holder)).scalars()
    return sorted({*leased, *registered})


def worker_started(c: Connection, holder: str, now: datetime, max_cycles: int) -> None:
    c.execute(sa.delete(workers).where(workers.c.holder == holder))
    c.execute(
        sa.insert(workers).values(holder=holder, started_at=now, heartbeat_at=now, max_cycles=max_cycles)
    )


def worker_heartbeat(c: Connection, holder: str, now: datetime) -> None:
    c.execute(sa.update(workers).where(workers.c.holder == holder).values(heartbeat_at=now))


def worker_gone(c: Connection, holder: str) -> None:
    c.execute(sa.delete(workers).where(workers.c.holder == holder))


def account_statuses(c: Connection, names: Iterable[str] | None = None) -> list[AccountStatus]:
    """Every recorded account (or those named) with its schedule, lease, block, cursor and last run."""
    latest = (
        sa.select(runs.c.account, sa.func.max(runs.c.started_at).label("started_at"))
        .group_by(runs.c.account)
        .subquery()
    )
    last = (
        sa.select(runs.c.account, runs.c.status, runs.c.started_at, runs.c.finished_at, runs.c.due_at)
        .join(latest, sa.and_(runs.c.account == latest.c.account, runs.c.started_at == latest.c.started_at))
        .subquery()
    )
    query = (
        sa.select(
            accounts.c.name,
            accounts.c.crm,
            accounts.c.next_due_at,
            leases.c.holder,
            leases.c.expires_at,
            accounts.c.blocked_reason,
            accounts.c.blocked_at,
            cursors.c.updated_at,
            cursors.c.last_full_pull_at,
            last.c.status,
            last.c.started_at,
            last.c.finished_at,
            last.c.due_at,
        )
        .select_from(accounts)
        .outerjoin(leases, leases.c.account == accounts.c.name)
        .outerjoin(cursors, cursors.c.account == accounts.c.name)
        .outerjoin(last, last.c.account == accounts.c.name)
        .order_by(accounts.c.name)
    )
    wanted = None if names is None else set(names)
    found: dict[str, AccountStatus] = {}
    for row in c.execute(query):
        if wanted is not None and row[0] not in wanted:
            continue
        if row[0] not in found:  # two runs started in the same microsecond: either is the last
            found[row[0]] = AccountStatus(
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                row[5],
                row[6],
                row[7],
                row[8],
                row[9],
                row[10],
                row[11],
                row[12],
            )
    return list(found.values())


def worker_statuses(c: Connection) -> list[WorkerStatus]:
    counts: dict[str, int] = {
        holder: int(n)
        for holder, n in c.execute(sa.select(leases.c.holder, sa.func.count()).group_by(leases.c.holder))
    }
    rows = c.execute(sa.select(workers).order_by(workers.c.holder))
    return [
        WorkerStatus(r.holder, r.started_at, r.heartbeat_at, r.max_cycles, int(counts.get(r.holder, 0)))
        for r in rows
    ]


def api_calls_since(c: Connection, account: str, since: datetime) -> int:
    """CRM API calls the account's runs made since ``since`` (finished, crashed or in progress), whichever
    worker ran them: the daily budget is the account's, not a process's."""
    total = c.execute(
        sa.select(sa.func.coalesce(sa.func.sum(runs.c.api_calls), 0)).where(
            runs.c.account == account, runs.c.started_at >= since
        )
    ).scalar()
    return int(total or 0)


def unscheduled(c: Connection, names: Collection[str]) -> None:
    """Take accounts off the schedule (no worker serves them any more)."""
    if names:
        c.execute(sa.update(accounts).where(accounts.c.name.in_(list(names))).values(next_due_at=None))
