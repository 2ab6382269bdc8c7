"""The worker's mirror as the contract suite keeps it: what a connector is handed as ``KnownDeals``.

It does what ``sync.cycle`` does with the mirror, with the same functions, minus the database: a pulled
batch is stored (deals the mirror would not keep are dropped, restamped deals take the CRM's stamp), and
after an apply the effects are written through with the ids and stamps the CRM answered
(``sync.effects.mirror_after``). So a rerun asks the connector exactly what the worker would ask it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from connectors.base import ActionOutcome, ChangeBatch, Directory, OutcomeStatus
from policies.model import Action, Deal
from policies.simulate import apply_actions
from store.mirror import worth_mirroring
from sync.effects import mirror_after


class Mirror:
    """``connectors.base.KnownDeals`` over a dictionary."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self.held: dict[str, Deal] = {}

    # -- KnownDeals -----------------------------------------------------------------------------------

    def modified_at(self, deal_ids: Collection[str]) -> Mapping[str, datetime]:
        return {i: self.held[i].modified_at for i in deal_ids if i in self.held}

    def deals(self, deal_ids: Collection[str]) -> Mapping[str, Deal]:
        return {i: self.held[i] for i in deal_ids if i in self.held}

    def wanted(self, deal: Deal) -> bool:
        return worth_mirroring(deal)

    # -- what the cycle does with it -------------------------------------------------------------------

    def store(self, batches: Iterable[ChangeBatch]) -> list[ChangeBatch]:
        """Store pulled batches as the cycle does; the batches, for the test to look at."""
        stored = list(batches)
        for batch in stored:
            for deal in batch.deals:
                if worth_mirroring(deal):
                    self.held[deal.id] = deal
                else:
                    self.held.pop(deal.id, None)
            for deal_id in batch.removed_deal_ids:
                self.held.pop(deal_id, None)
            for deal_id, stamp in batch.restamped.items():
                if deal_id in self.held:
                    self.held[deal_id] = replace(self.held[deal_id], modified_at=stamp)
        return stored

    def written(self, actions: Sequence[Action], outcomes: Sequence[ActionOutcome], now: datetime) -> None:
        """The write-through after an apply: the effects of what was applied, with what the CRM answered."""
        answered = {o.key: o for o in outcomes}
        effective: dict[str, list[Action]] = {}
        for action in actions:
            outcome = answered[action.key]
            if outcome.status in (OutcomeStatus.APPLIED, OutcomeStatus.ALREADY_APPLIED):
                effective.setdefault(action.deal_id, []).append(action)
        for deal_id, done in effective.items():
            if deal_id not in self.held:
                continue
            after = mirror_after(
                self.held[deal_id], done, answered, now, self.directory.pipelines, apply_actions
            )
            if worth_mirroring(after):
                self.held[deal_id] = after
            else:
                del self.held[deal_id]
