"""The backtest's history store: deals as last pulled, each with its field history, per account.

``followup backtest --settings`` keeps here every deal it looked at (open, or changed since the start of
the period it covers: closed deals too, their outcome is what a backtest judges), with the history the CRM
gave for it, and where its last pull ended (the connector's cursor, which period the rows cover, where the
CRM's history starts, the fields it keeps no history of). The next backtest pulls only what changed since
that cursor and reads the histories only of deals whose modification stamp moved (``sync/history.py``).
It is separate from the cycle's mirror (open deals only) and cursor: the cycle never reads or writes it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from policies.codec import (
    DealHistory,
    deal_from_json,
    deal_history_from_json,
    deal_history_to_json,
    deal_to_json,
)
from policies.model import Deal
from store.database import dumps, loads, upsert
from store.schema import history_deals, history_pulls


@dataclass(frozen=True, slots=True)
class HistoryPull:
    """Where the last history pull of an account ended."""

    cursor: Mapping[str, str] | None
    covers_since: datetime  # the rows hold every deal open, or changed at or after this moment
    history_since: datetime | None  # where the CRM's history starts (None: each deal's creation)
    untracked: tuple[str, ...]
    updated_at: datetime


DEALS_PER_READ = 500  # deals (each with its whole field history) one short read transaction hands out


class HistoryStore:
    """Reads and writes the history tables of a state store's database (one transaction per method)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def last_pull(self, account: str) -> HistoryPull | None:
        with self.engine.connect() as c:
            row = c.execute(sa.select(history_pulls).where(history_pulls.c.account == account)).first()
        if row is None:
            return None
        return HistoryPull(
            loads(row.cursor),
            row.covers_since,
            row.history_since,
            tuple(loads(row.untracked) or ()),
            row.updated_at,
        )

    def stamps(self, account: str) -> dict[str, datetime]:
        """Each held deal's modification stamp as of its last history read."""
        query = sa.select(history_deals.c.deal_id, history_deals.c.modified_at).where(
            history_deals.c.account == account
        )
        with self.engine.connect() as c:
            return {row.deal_id: row.modified_at for row in c.execute(query)}

    def save(
        self,
        account: str,
        *,
        read: Sequence[tuple[Deal, DealHistory]],
        refreshed: Sequence[Deal],
        removed: Collection[str],
        keep_only: Collection[str] | None,
        pull: HistoryPull,
    ) -> None:
        """One pull's results, atomically: deals whose history was read (``read``), deals whose history
        did not change but whose aggregate may have (``refreshed``: activities, contacts), deals the CRM
        no longer has (``removed``), and, after a full pull, only the deals it kept (``keep_only``)."""
        with self.engine.begin() as c:
            upsert(
                c,
                history_deals,
                [
                    {
                        "account": account,
                        "deal_id": deal.id,
                        "is_closed": deal.is_closed,
                        "modified_at": deal.modified_at,
                        "data": deal_to_json(deal).decode(),
                        "history": deal_history_to_json(history).decode(),
                    }
                    for deal, history in read
                ],
                ("account", "deal_id"),
            )
            for deal in refreshed:
                c.execute(
                    sa.update(history_deals)
                    .where(history_deals.c.account == account, history_deals.c.deal_id == deal.id)
                    .values(is_closed=deal.is_closed, data=deal_to_json(deal).decode())
                )
            gone = set(removed)
            if keep_only is not None:
                held = c.execute(
                    sa.select(history_deals.c.deal_id).where(history_deals.c.account == account)
                ).scalars()
                gone.update(set(held) - set(keep_only))
            for chunk in _chunks(sorted(gone), 500):
                c.execute(
                    sa.delete(history_deals).where(
                        history_deals.c.account == account, history_deals.c.deal_id.in_(chunk)
                    )
                )
            upsert(
                c,
                history_pulls,
                [
                    {
                        "account": account,
                        "cursor": dumps(dict(pull.cursor)) if pull.cursor is not None else None,
                        "covers_since": pull.covers_since,
                        "history_since": pull.history_since,
                        "untracked": dumps(list(pull.untracked)),
                        "updated_at": pull.updated_at,
                    }
                ],
                ("account",),
            )

    def deals(
        self, account: str, since: datetime, *, chunk: int = DEALS_PER_READ
    ) -> Iterator[tuple[Deal, DealHistory]]:
        """The held deals open now or changed at or after ``since``, with their histories, by id.

        Read ``chunk`` deals at a time, each chunk in a short transaction of its own (keyset on the deal
        id), and handed out after that transaction ended: the caller (a backtest replaying each deal) may
        take as long as it likes over them without holding a transaction open, which the store's
        ``idle_in_transaction_timeout`` would end.
        """
        query = (
            sa.select(history_deals.c.deal_id, history_deals.c.data, history_deals.c.history)
            .where(
                history_deals.c.account == account,
                sa.or_(history_deals.c.is_closed.is_(False), history_deals.c.modified_at >= since),
            )
            .order_by(history_deals.c.deal_id)
            .limit(chunk)
        )
        after: str | None = None
        while True:
            page = query if after is None else query.where(history_deals.c.deal_id > after)
            with self.engine.connect() as c:
                rows = c.execute(page).all()
            for row in rows:
                yield deal_from_json(row.data), deal_history_from_json(row.history)
            if len(rows) < chunk:
                return
            after = rows[-1].deal_id


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
