"""``Snapshot``: one CRM's state at a moment, the input of ``followup plan``/``explain``/``backtest``.

Owners, pipelines and deals with everything the rules read, and optionally each deal's recorded changes
(``policies.history.SnapshotHistory``), which make it replayable. Its JSON form is ``policies.codec``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from policies.history import SnapshotHistory
from policies.model import Deal, Owner, Pipeline


@dataclass(frozen=True, slots=True)
class Snapshot:
    crm: str
    owners: tuple[Owner, ...] = ()
    pipelines: tuple[Pipeline, ...] = ()
    deals: tuple[Deal, ...] = ()
    taken_at: datetime | None = None
    history: SnapshotHistory | None = None  # for the backtest; ``None``: a snapshot of the present only
