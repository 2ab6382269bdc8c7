"""The local mirror of deal aggregates: what the worker evaluates every cycle without asking the CRM.

Rows hold the whole aggregate as JSON (``policies.codec``) plus the few columns the queries need: the owner
(evaluation walks the mirror owner by owner, so per-owner budgets see all of an owner's deals at once) and
``seen_run`` (a complete full pull drops the rows it did not see).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from policies.codec import deal_from_json, deal_to_json
from policies.model import Deal, FollowupState
from store.database import column_by_key, in_lists, upsert
from store.schema import mirror_deals


def worth_mirroring(deal: Deal) -> bool:
    """Open deals, deals in nurture, and closed deals with our tasks still open (so they get closed)."""
    return (
        not deal.is_closed
        or deal.followup_state is FollowupState.NURTURE
        or any(t.is_open for t in deal.auto_tasks)
    )


def deal_row(account: str, deal: Deal, run_id: str | None) -> dict[str, Any]:
    """A mirror row; without ``run_id`` (a write-through, not a pull) it leaves ``seen_run`` as it is."""
    row = {
        "account": account,
        "deal_id": deal.id,
        "owner_id": deal.owner_id or "",
        "is_closed": deal.is_closed,
        "modified_at": deal.modified_at,
        "data": deal_to_json(deal).decode(),
    }
    if run_id is not None:
        row["seen_run"] = run_id
    return row


def write_deals(connection: Connection, account: str, deals: Sequence[Deal], run_id: str | None) -> None:
    upsert(
        connection,
        mirror_deals,
        [deal_row(account, d, run_id) for d in deals],
        ("account", "deal_id"),
    )


def delete_deals(connection: Connection, account: str, deal_ids: Collection[str]) -> int:
    if not deal_ids:
        return 0
    deleted = 0
    for ids in in_lists(deal_ids):
        result = connection.execute(
            sa.delete(mirror_deals).where(mirror_deals.c.account == account, mirror_deals.c.deal_id.in_(ids))
        )
        deleted += result.rowcount
    return deleted


def drop_unseen(connection: Connection, account: str, run_id: str) -> int:
    """Delete the rows a complete full pull did not touch: deals gone from the CRM or no longer mirrored."""
    result = connection.execute(
        sa.delete(mirror_deals).where(
            mirror_deals.c.account == account,
            sa.or_(mirror_deals.c.seen_run.is_(None), mirror_deals.c.seen_run != run_id),
        )
    )
    return result.rowcount


def read_deals(connection: Connection, account: str, deal_ids: Collection[str]) -> dict[str, Deal]:
    out: dict[str, Deal] = {}
    for ids in in_lists(deal_ids):
        rows = connection.execute(
            sa.select(mirror_deals.c.data).where(
                mirror_deals.c.account == account, mirror_deals.c.deal_id.in_(ids)
            )
        )
        for (data,) in rows:
            deal = deal_from_json(data)
            out[deal.id] = deal
    return out


def read_stamps(connection: Connection, account: str, deal_ids: Collection[str]) -> dict[str, datetime]:
    """The modification stamps of the mirrored ``deal_ids`` (a column: no aggregate is decoded)."""
    found = column_by_key(connection, mirror_deals, account, "deal_id", "modified_at", deal_ids)
    out: dict[str, datetime] = {str(deal_id): stamp for deal_id, stamp in found.items()}
    return out


def restamp(connection: Connection, account: str, stamps: Mapping[str, datetime]) -> int:
    """Give mirrored deals the CRM's new modification stamps (aggregates unchanged); returns how many."""
    changed = 0
    for deal_id, deal in read_deals(connection, account, list(stamps)).items():
        stamped = replace(deal, modified_at=stamps[deal_id])
        changed += connection.execute(
            sa.update(mirror_deals)
            .where(mirror_deals.c.account == account, mirror_deals.c.deal_id == deal_id)
            .values(modified_at=stamped.modified_at, data=deal_to_json(stamped).decode())
        ).rowcount
    return changed


def count(connection: Connection, account: str) -> int:
    value = connection.execute(
        sa.select(sa.func.count()).select_from(mirror_deals).where(mirror_deals.c.account == account)
    ).scalar_one()
    return int(value)


def iter_owner_chunks(engine: Engine, account: str, chunk_size: int) -> Iterator[list[Deal]]:
    """Every mirrored deal, in chunks of about ``chunk_size`` that never split one owner's deals.

    Each chunk is read in its own short transaction (keyset pagination on owner, deal), so the caller may
    write to the mirror between chunks and memory stays bounded by the chunk, not the mirror.
    """
    after: tuple[str, str] | None = None
    while True:
        chunk: list[Deal] = []
        last_owner: str | None = None
        with engine.connect() as connection:
            query = (
                sa.select(mirror_deals.c.owner_id, mirror_deals.c.deal_id, mirror_deals.c.data)
                .where(mirror_deals.c.account == account)
                .order_by(mirror_deals.c.owner_id, mirror_deals.c.deal_id)
            )
            if after is not None:
                query = query.where(sa.tuple_(mirror_deals.c.owner_id, mirror_deals.c.deal_id) > after)
            result = connection.execution_options(yield_per=500).execute(query)
            for owner_id, deal_id, data in result:
                if len(chunk) >= chunk_size and owner_id != last_owner:
                    break
                chunk.append(deal_from_json(data))
                last_owner = owner_id
                after = (owner_id, deal_id)
            result.close()
        if not chunk:
            return
        yield chunk
