"""The mirror as the connector's memory of what the worker already knows: the ``KnownDeals`` it is handed.

An incremental pull asks it, for the deals the CRM reports changed, what the mirror holds: a deal whose
stamp is the one the mirror has (our own write's, or the one we last read) has nothing new to bring.
The mirror holds our writes' effects (the write-through, with the stamps and ids the CRM answered), so
this is also how our own writes stop coming back as someone else's change.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from policies.model import Deal
from store import StateStore
from store.mirror import worth_mirroring


@dataclass(frozen=True, slots=True)
class MirrorKnowledge:
    """``connectors.base.KnownDeals`` over one account's mirror."""

    store: StateStore
    account: str

    def modified_at(self, deal_ids: Collection[str]) -> Mapping[str, datetime]:
        return self.store.mirror_stamps(self.account, deal_ids)

    def deals(self, deal_ids: Collection[str]) -> Mapping[str, Deal]:
        return self.store.mirror_deals(self.account, deal_ids)

    def wanted(self, deal: Deal) -> bool:
        return worth_mirroring(deal)
