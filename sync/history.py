"""A live backtest's snapshot: the deals of a period with their field histories, pulled incrementally.

``pull_history_snapshot`` gathers what ``followup backtest --settings`` replays (docs/backtest.md):

1. the deal aggregates through the connector's own pull (``pull_changes``, read-only): everything on the
   first pull, and when the period asked for starts before the one held (the store's ``covers_since``);
   else only what changed since the history store's cursor (the connector still reconciles in full at its
   own interval: HubSpot daily, Salesforce weekly). Kept: deals open now, or changed at or after the start
   of the period (a deal closed in the period was changed then), closed ones included;
2. the field histories (``connectors.history.HistorySource.read_histories``) only of the kept deals whose
   modification stamp differs from the one the store holds with their history (any change of a field
   moves it), or that it does not hold: histories are read once per change, however often the backtest
   runs;
3. everything into the history store (``store/history.py``) in one transaction, cursor last;
4. the snapshot from the store: every held deal open now or changed since the period's start.

Without a store (``store=None``) it is one full pull and one history read, kept in memory only.

The cycle does not keep histories current: it would read a deal's history each time the deal changes (every
15 minutes on a busy pipeline), for a report run now and then, while this reads it once per backtest at
most. Reads here cost what changed since the last backtest (docs/benchmarks.md, "History pulls").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import structlog

from connectors.base import CrmConnector, Directory, RejectedRecord
from connectors.history import HistoryRead, HistorySource
from policies.codec import Snapshot
from policies.history import DealHistory, FieldChange, SnapshotHistory
from policies.model import Deal
from store.history import HistoryPull, HistoryStore

log = structlog.get_logger(__name__)


class HistoryConnector(CrmConnector, HistorySource, Protocol):
    """A connector that also reads deal histories (both CRM connectors)."""


@dataclass(frozen=True, slots=True)
class HistoryPullResult:
    snapshot: Snapshot
    full: bool  # the deal aggregates were pulled in full (not from the stored cursor)
    deals_pulled: int  # deal aggregates the connector returned
    histories_read: int  # deals whose history was read from the CRM
    rejected: tuple[RejectedRecord, ...]  # deals left out: their aggregate or history could not be read
    notes: tuple[str, ...]  # what the admin should know (fields without history tracking, ...)


def in_scope(deal: Deal, since: datetime) -> bool:
    """Open now, or changed at or after ``since`` (a deal that closed in the period did then)."""
    return not deal.is_closed or deal.modified_at >= since


def deal_history(deal_id: str, read: HistoryRead) -> DealHistory:
    """The connector's versions of one deal as ``policies.history`` changes (``ValueError`` if one does not
    fit the field, which the connectors' own reading already rules out)."""
    return DealHistory(tuple(FieldChange(v.at, v.field, v.value) for v in read.changes.get(deal_id, ())))


def pull_history_snapshot(
    connector: HistoryConnector,
    directory: Directory,
    *,
    since: datetime,
    now: Callable[[], datetime],
    store: HistoryStore | None,
    account: str,
) -> HistoryPullResult:
    """See the module docstring."""
    last = store.last_pull(account) if store is not None else None
    full = last is None or last.covers_since > since
    covers = since if full or last is None else last.covers_since
    cursor = None if full or last is None else last.cursor
    pulled: dict[str, Deal] = {}
    removed: set[str] = set()
    rejected: list[RejectedRecord] = []
    final_cursor = cursor
    for batch in connector.pull_changes(directory, cursor):
        for deal in batch.deals:
            pulled[deal.id] = deal
            removed.discard(deal.id)
        for deal_id in batch.removed_deal_ids:
            pulled.pop(deal_id, None)
            removed.add(deal_id)
        rejected.extend(batch.rejected)
        final_cursor = batch.cursor
    kept = [d for d in pulled.values() if in_scope(d, covers)]
    held = store.stamps(account) if store is not None else {}
    stale = [d for d in kept if held.get(d.id) != d.modified_at]
    everything = len(stale) == len(kept) and (full or not held)
    read = (
        connector.read_histories(stale, directory, all_since=covers if everything else None)
        if stale
        else HistoryRead()
    )
    rejected.extend(read.rejected)
    histories: list[tuple[Deal, DealHistory]] = []
    failed = {r.record_id for r in read.rejected}
    for deal in stale:
        if deal.id in failed:
            continue
        try:
            histories.append((deal, deal_history(deal.id, read)))
        except ValueError as exc:
            failed.add(deal.id)
            rejected.append(
                RejectedRecord("deal", deal.id, "unreadable", None, f"deal {deal.id}: history: {exc}")
            )
    untracked = read.untracked if stale else (last.untracked if last is not None else ())
    history_since = _earliest(read.since, last.history_since if last is not None else None, stale)
    fresh = {d.id for d, _ in histories}
    refreshed = [d for d in kept if d.id not in fresh and d.id not in failed]
    for record in rejected:
        log.warning(
            "history_deal_left_out", deal=record.record_id, reason=record.reason, detail=record.detail
        )
    log.info(
        "history_pulled",
        account=account,
        full=full,
        deals=len(pulled),
        kept=len(kept),
        histories_read=len(stale),
        rejected=len(rejected),
    )
    if store is None:
        rows = sorted(histories, key=lambda pair: pair[0].id)
    else:
        store.save(
            account,
            read=histories,
            refreshed=refreshed,
            removed=removed | failed,
            keep_only=[d.id for d in kept if d.id not in failed] if full else None,
            pull=HistoryPull(final_cursor, covers, history_since, tuple(untracked), now()),
        )
        rows = list(store.deals(account, since))
    snapshot = Snapshot(
        crm=connector.name,
        owners=tuple(directory.owners.values()),
        pipelines=tuple(directory.pipelines.values()),
        deals=tuple(d for d, _ in rows),
        taken_at=now(),
        history=SnapshotHistory(
            {d.id: h for d, h in rows}, since=history_since, untracked=tuple(sorted(untracked))
        ),
    )
    return HistoryPullResult(snapshot, full, len(pulled), len(stale), tuple(rejected), read.notes)


def _earliest(read: datetime | None, held: datetime | None, stale: Sequence[Deal]) -> datetime | None:
    """Where the history starts: None when the CRM keeps it since creation (HubSpot), else its retention as
    of this read, or earlier where the store holds histories read before (deals not read again keep them)."""
    if not stale:
        return held
    if read is None:
        return None
    return read if held is None else min(read, held)
