"""The backtest's history tables: a pull's deals with their histories and its cursor in one transaction; a
full pull keeps only what it kept; the deals of a period come back with their histories (SQLite and
PostgreSQL alike)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from policies.history import DealHistory, FieldChange
from policies.model import FollowupState
from store import StateStore
from store.history import HistoryPull, HistoryStore
from tests.worker.conftest import T0, make_deal


def _history(n: int) -> DealHistory:
    return DealHistory((FieldChange(T0 - timedelta(days=n), "stage", "qualifiedtobuy"),))


def _pull(cursor: str, covers_days: int = 30) -> HistoryPull:
    return HistoryPull({"seq": cursor}, T0 - timedelta(days=covers_days), None, ("readiness",), T0)


def test_a_pull_is_stored_whole_and_read_back_by_period(store: StateStore) -> None:
    history = HistoryStore(store.engine)
    assert history.last_pull("acme") is None
    open_deal, closed_long_ago = make_deal(1), replace(make_deal(2), modified_at=T0 - timedelta(days=90))
    closed_long_ago = replace(closed_long_ago, stage=replace(closed_long_ago.stage, is_closed=True))
    history.save(
        "acme",
        read=[(open_deal, _history(1)), (closed_long_ago, _history(2))],
        refreshed=[],
        removed=(),
        keep_only=None,
        pull=_pull("1"),
    )
    last = history.last_pull("acme")
    assert last == _pull("1")
    assert history.stamps("acme") == {"D0001": open_deal.modified_at, "D0002": closed_long_ago.modified_at}
    [(deal, found)] = list(
        history.deals("acme", T0 - timedelta(days=30))
    )  # the closed one is out of the period
    assert deal == open_deal
    assert found == _history(1)
    assert [d.id for d, _ in history.deals("acme", T0 - timedelta(days=120))] == ["D0001", "D0002"]
    assert list(history.deals("other", T0 - timedelta(days=120))) == []


def test_refreshed_deals_keep_their_history_removed_and_unkept_ones_go(store: StateStore) -> None:
    history = HistoryStore(store.engine)
    deals = [make_deal(n) for n in (1, 2, 3)]
    history.save(
        "acme",
        read=[(d, _history(n)) for n, d in enumerate(deals)],
        refreshed=[],
        removed=(),
        keep_only=None,
        pull=_pull("1"),
    )
    renamed = replace(deals[0], name="renamed", followup_state=FollowupState.NURTURE)
    history.save("acme", read=[], refreshed=[renamed], removed=("D0002",), keep_only=None, pull=_pull("2"))
    held = list(history.deals("acme", T0 - timedelta(days=30)))
    assert [d.id for d, _ in held] == ["D0001", "D0003"]
    [(deal, found)] = [(d, h) for d, h in held if d.id == "D0001"]
    assert deal.name == "renamed"
    assert found == _history(0)  # the aggregate moved on, its history stayed
    history.save("acme", read=[], refreshed=[], removed=(), keep_only=["D0003"], pull=_pull("3"))
    assert [d.id for d, _ in history.deals("acme", T0 - timedelta(days=30))] == ["D0003"]
    assert history.last_pull("acme") == _pull("3")
