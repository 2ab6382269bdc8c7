"""The action ledger and the audit trail: what the worker meant to do, what happened, and why.

Every action's life is ``intent`` (committed before the CRM is called) then one of ``applied``, ``failed``,
``conflict`` or ``retry_later`` (committed after). An ``intent`` with no outcome is the trace of a crash
between the two: the next cycle asks the CRM, by idempotency key, whether the write happened. ``shadow``
marks an action decided in shadow mode and never written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from policies.codec import action_from_dict, action_to_dict
from policies.model import Action, action_kind
from store.database import column_by_key, dumps, loads, upsert
from store.schema import audit, ledger

INTENT = "intent"
APPLIED = "applied"
FAILED = "failed"
CONFLICT = "conflict"
RETRY_LATER = "retry_later"
SHADOW = "shadow"

OUTCOME_STATUSES = frozenset({APPLIED, FAILED, CONFLICT, RETRY_LATER})


@dataclass(frozen=True, slots=True)
class Result:
    """What became of one intent (the store does not know connectors; the cycle maps their outcomes)."""

    key: str
    status: str  # one of OUTCOME_STATUSES
    crm_ids: tuple[str, ...] = ()
    message: str | None = None


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    key: str
    deal_id: str
    rule_id: str
    kind: str
    status: str
    crm_ids: tuple[str, ...]
    attempts: int
    error: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One rule's verdict on one deal in one cycle, with what became of it."""

    deal_id: str
    rule_id: str
    fired: bool
    outcome: str  # planned | deferred | no_action
    reason: str
    evidence: tuple[tuple[str, str], ...] = ()
    action_keys: tuple[str, ...] = ()
    mode: str | None = None  # enforce | shadow for this deal's rollout cohort; None: the cycle's mode
    cohort: str | None = None  # the deal's rollout cohort (policies.rollout)


def statuses(connection: Connection, account: str, keys: Collection[str]) -> dict[str, str]:
    found = column_by_key(connection, ledger, account, "key", "status", keys)
    return {key: str(status) for key, status in found.items()}


def pending_intents(connection: Connection, account: str) -> list[Action]:
    rows = connection.execute(
        sa.select(ledger.c.action)
        .where(ledger.c.account == account, ledger.c.status == INTENT)
        .order_by(ledger.c.created_at, ledger.c.key)
    )
    return [action_from_dict(loads(data)) for (data,) in rows]


def record(
    connection: Connection,
    account: str,
    run_id: str,
    actions: Sequence[Action],
    status: str,
    now: datetime,
    cohorts: Mapping[str, str] | None = None,
) -> None:
    """Write actions with ``status``: ``intent`` (committed before the CRM is called; each counts an attempt)
    or ``shadow``; ``cohorts`` gives each deal's rollout cohort (by deal id) when known."""
    if not actions:
        return
    existing = _attempts(connection, account, [a.key for a in actions])
    bump = 1 if status == INTENT else 0
    upsert(
        connection,
        ledger,
        [
            {
                "account": account,
                "key": a.key,
                "deal_id": a.deal_id,
                "rule_id": a.rule_id,
                "kind": action_kind(a),
                "status": status,
                "action": dumps(action_to_dict(a)),
                "crm_ids": "[]",
                "attempts": existing.get(a.key, 0) + bump,
                "error": None,
                "run_id": run_id,
                "created_at": now,
                "updated_at": now,
                # without cohorts (recovery re-applying an intent) the cohort recorded with it stays
                **({"cohort": cohorts.get(a.deal_id)} if cohorts is not None else {}),
            }
            for a in actions
        ],
        ("account", "key"),
    )


def _attempts(connection: Connection, account: str, keys: list[str]) -> dict[str, int]:
    found = column_by_key(connection, ledger, account, "key", "attempts", keys)
    return {key: int(n) for key, n in found.items()}


def record_results(connection: Connection, account: str, results: Iterable[Result], now: datetime) -> None:
    """Set each intent's outcome, in one executemany round trip per batch."""
    rows = []
    for outcome in results:
        if outcome.status not in OUTCOME_STATUSES:
            raise ValueError(f"not an outcome status: {outcome.status}")
        rows.append(
            {
                "k": outcome.key,
                "new_status": outcome.status,
                "new_crm_ids": dumps(list(outcome.crm_ids)),
                "new_error": outcome.message,
            }
        )
    if not rows:
        return
    statement = (
        sa.update(ledger)
        .where(ledger.c.account == account, ledger.c.key == sa.bindparam("k"))
        .values(
            status=sa.bindparam("new_status"),
            crm_ids=sa.bindparam("new_crm_ids"),
            error=sa.bindparam("new_error"),
            updated_at=now,
        )
    )
    connection.execute(statement, rows)


def entries(connection: Connection, account: str, *, deal_id: str | None = None) -> list[LedgerEntry]:
    """The account's ledger rows (of one deal, if given), oldest first: each entry is its row by column name,
    with the CRM ids decoded."""
    columns = [ledger.c[f.name] for f in dataclasses.fields(LedgerEntry)]
    query = sa.select(*columns).where(ledger.c.account == account).order_by(ledger.c.created_at, ledger.c.key)
    if deal_id is not None:
        query = query.where(ledger.c.deal_id == deal_id)
    return [
        LedgerEntry(**{**row._mapping, "crm_ids": tuple(loads(row.crm_ids))})
        for row in connection.execute(query)
    ]


def write_audit(
    connection: Connection,
    account: str,
    run_id: str,
    mode: str,
    now: datetime,
    items: Sequence[AuditEntry],
) -> None:
    if not items:
        return
    connection.execute(
        sa.insert(audit),
        [
            {
                "account": account,
                "run_id": run_id,
                "at": now,
                "deal_id": e.deal_id,
                "rule_id": e.rule_id,
                "fired": e.fired,
                "mode": e.mode or mode,
                "cohort": e.cohort,
                "outcome": e.outcome,
                "action_keys": dumps(list(e.action_keys)),
                "explanation": dumps({"reason": e.reason, "evidence": [list(p) for p in e.evidence]}),
            }
            for e in items
        ],
    )


def read_audit(connection: Connection, account: str, *, deal_id: str | None = None) -> list[dict[str, Any]]:
    query = sa.select(audit).where(audit.c.account == account).order_by(audit.c.id)
    if deal_id is not None:
        query = query.where(audit.c.deal_id == deal_id)
    out = []
    for row in connection.execute(query):
        item = dict(row._mapping)
        item["action_keys"] = loads(item["action_keys"])
        item["explanation"] = loads(item["explanation"])
        out.append(item)
    return out
