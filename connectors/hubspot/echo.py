"""Our own writes' echo in an incremental pull: what the search reports changed that is only us.

HubSpot reports a deal changed when its ``hs_lastmodifieddate`` moved: by our own deal writes, and by the
activity roll-ups HubSpot derives when we create or close a task on it. It reports our tasks changed when
we created or closed them, and through them their deals and contacts. None of that is news to the worker,
whose mirror holds the effect of its writes with the stamps HubSpot answered (``connectors.base.KnownDeals``).
So, before any aggregate is built, a changed deal is left out when

* its stamp is the one the mirror holds (our own write's stamp, or the one we last read);
* the mirror does not hold it and its record alone shows the mirror would not want it (closed, not in
  nurture): pulling it could only drop it again;
* its stamp moved but its record, mapped, is the mirrored deal to the last field (a roll-up of our own
  task, HubSpot's way): the mirror keeps it and takes the new stamp (``restamped``);

and a changed task is no change at all when it is ours (key line) and the mirror holds it with the same
stamp on every deal it belongs to (or it is closed and its deal is not mirrored), or when it is somebody's
follow-up task we closed (``nurture.close_rep_tasks``) and the mirror holds that close at the same stamp.
Anything else, including every change someone else made after our write, is pulled as before.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from connectors.base import Directory, KnownDeals
from connectors.hubspot.fetch import Associated
from connectors.hubspot.mapping import modified_stamp, parse_task_key
from policies.model import Deal

Records = dict[str, Mapping[str, Any]]
Shell = Callable[[Mapping[str, Any], Directory], Deal]  # a deal record mapped without its aggregates


def unchanged(shell: Deal, mirrored: Deal) -> bool:
    """Whether a deal record read now (``shell``) is the mirrored deal in everything but its stamp."""
    same_parts = dataclasses.replace(
        shell,
        modified_at=mirrored.modified_at,
        contacts=mirrored.contacts,
        activities=mirrored.activities,
        auto_tasks=mirrored.auto_tasks,
    )
    return same_parts == mirrored


class DealEchoes:
    """Splits the deal records an incremental search found into those to pull and the echoes."""

    def __init__(self, known: KnownDeals, shell: Shell, directory: Directory) -> None:
        self._known = known
        self._shell = shell
        self._directory = directory

    def split(self, records: Records) -> tuple[Records, dict[str, datetime]]:
        """(records to pull, new stamps of mirrored deals that did not change but for their stamp)."""
        stamps = self._known.modified_at(list(records))
        pull: Records = {}
        moved: list[str] = []
        for deal_id, record in records.items():
            mirrored = stamps.get(deal_id)
            if mirrored is None:
                if self._wanted(record):
                    pull[deal_id] = record
            elif modified_stamp(record) != mirrored:
                moved.append(deal_id)
        restamped: dict[str, datetime] = {}
        for deal_id, deal in self._known.deals(moved).items():
            record = records[deal_id]
            stamp = modified_stamp(record)
            try:
                same = stamp is not None and unchanged(self._shell(record, self._directory), deal)
            except Exception:  # any mapping failure: pulled, mapped again and rejected with its reason
                same = False
            if same and stamp is not None:
                restamped[deal_id] = stamp
            else:
                pull[deal_id] = record
        pull.update({d: records[d] for d in moved if d not in pull and d not in restamped})
        return pull, restamped

    def _wanted(self, record: Mapping[str, Any]) -> bool:
        try:
            return self._known.wanted(self._shell(record, self._directory))
        except Exception:  # any mapping failure: pulled and rejected with its reason, as before
            return True


def own_task_echoes(
    hits: Mapping[str, Mapping[str, Any]],
    to_deals: Mapping[str, list[Associated]],
    known: KnownDeals,
) -> set[str]:
    """The task ids among ``hits`` (search records) whose only change is our own write.

    Ours (key line): the mirror holds the task at this stamp on every deal it belongs to, or it is closed
    and none of its deals is mirrored. Somebody's task we closed (``nurture.close_rep_tasks``): the mirror
    holds it as closed by us at this stamp on every deal it belongs to.
    """
    candidates = {i: r for i, r in hits.items() if _is_ours(r) or _completed(r)}
    deal_ids = {a.to_id for i in candidates for a in to_deals.get(i, [])}
    mirrored = known.deals(sorted(deal_ids)) if deal_ids else {}
    echoes: set[str] = set()
    for task_id, record in candidates.items():
        stamp = modified_stamp(record)
        links = to_deals.get(task_id, [])
        if not links or stamp is None:
            continue
        deals = [mirrored.get(a.to_id) for a in links]
        if _is_ours(record):
            echo = all(_holds(d, task_id, stamp, _completed(record)) for d in deals)
        else:
            echo = all(d is not None and _closed_by_us(d, task_id, stamp) for d in deals)
        if echo:
            echoes.add(task_id)
    return echoes


def _is_ours(record: Mapping[str, Any]) -> bool:
    return parse_task_key((record.get("properties") or {}).get("hs_task_body")) is not None


def _completed(record: Mapping[str, Any]) -> bool:
    return str((record.get("properties") or {}).get("hs_task_status") or "").upper() == "COMPLETED"


def _holds(deal: Deal | None, task_id: str, stamp: datetime, closed: bool) -> bool:
    """Whether the mirror already knows this state of our task (a closed task of a deal it dropped, too)."""
    if deal is None:
        return closed
    return any(t.id == task_id and t.modified_at == stamp for t in deal.auto_tasks)


def _closed_by_us(deal: Deal, task_id: str, stamp: datetime) -> bool:
    return any(t.id == task_id and not t.is_open and t.modified_at == stamp for t in deal.rep_tasks)
