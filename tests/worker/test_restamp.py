"""A pulled batch's ``restamped`` deals: the mirror takes the CRM's new stamp and keeps everything else."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from store import StateStore
from tests.worker.conftest import T0, make_deal


def test_a_restamp_changes_the_stamp_and_nothing_else(store: StateStore) -> None:
    """``store_batch`` with ``restamped`` gives mirrored deals the CRM's new stamp in the batch's
    transaction, with its cursor; their aggregates stay, and ids the mirror lacks are ignored."""
    store.ensure_account("a", "memory", T0)
    deal = make_deal(1)
    store.store_batch("a", "r1", [deal], (), {"hi": "1"}, T0)
    later = T0 + timedelta(seconds=7)
    store.store_batch("a", "r2", [], (), {"hi": "2"}, T0, {deal.id: later, "D9999": later})
    assert store.mirror_stamps("a", [deal.id, "D9999"]) == {deal.id: later}
    assert store.mirror_deals("a", [deal.id])[deal.id] == dataclasses.replace(deal, modified_at=later)
    assert store.cursor_state("a").cursor == {"hi": "2"}
