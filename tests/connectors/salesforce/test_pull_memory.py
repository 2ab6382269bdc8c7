"""The pulls' memory does not grow with the org: what the full pull retains after N query pages it retains
after 4N, and the incremental pull keeps no page of its window once it has handled it.

Through the real connector and simple-salesforce against the Salesforce sandbox, with the smallest page
Salesforce allows (200 rows) and one page per call, so that a few hundred deals make dozens of pages. A
transport adapter mounted on the connector's session (requests' own extension point) takes the measures as
each query call is about to be sent, when the pages before it have been handled: the ``Deal`` and
``Activity`` objects alive, an exact count (what grew with the org before: every mapped deal and every
touch logged on a contact, held until the last page).
"""

from __future__ import annotations

import dataclasses
import gc
import threading
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from crm_sandbox.salesforce import SalesforceSandbox, running_salesforce_sandbox
from requests.adapters import BaseAdapter

from connectors.salesforce.spill import CACHE_KIB, TOUCH_COLUMNS, DealSpill
from connectors.values import BadValue
from policies.model import Activity, ActivityKind, Deal, Direction, Outcome
from tests.connectors.salesforce.sandbox_helpers import (
    NOW,
    close_all,
    connector,
    options,
    plain_client,
    pull_all,
)
from tests.unit.builders import contact, deal

EARLY = 8  # the query call at which the first measure is taken; the second at 4 x EARLY


@pytest.fixture(scope="module")
def org() -> Iterator[SalesforceSandbox]:
    with running_salesforce_sandbox(seed=5, deals=400, now=NOW) as running:
        yield running
    close_all()


def _alive() -> tuple[int, int]:
    gc.collect()
    objects = gc.get_objects()
    return sum(isinstance(o, Deal) for o in objects), sum(isinstance(o, Activity) for o in objects)


class Measuring(BaseAdapter):
    """Passes every request to ``inner``; before each query call numbered in ``at``, takes the measures."""

    def __init__(self, inner: BaseAdapter, at: set[int]) -> None:
        super().__init__()
        self.inner = inner
        self.at = at
        self.queries = 0
        self.measures: dict[int, tuple[int, int]] = {}

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if "/query" in (request.path_url or ""):
            self.queries += 1
            if self.queries in self.at:
                self.measures[self.queries] = _alive()
        return self.inner.send(request, *args, **kwargs)

    def close(self) -> None:
        self.inner.close()


def test_full_pull_retains_the_same_after_4n_pages_as_after_n(org: SalesforceSandbox, tmp_path: Path) -> None:
    conn = connector(
        options(org, tmp_path / "token", query_batch_size=200, queries_per_call=1, deals_per_batch=50)
    )
    directory = conn.read_directory()
    measuring = Measuring(conn.client.session.get_adapter(org.instance_url), {EARLY, 4 * EARLY})
    conn.client.session.mount(org.instance_url, measuring)
    before = _alive()  # other tests of this process may keep some alive: the pull must add none
    pulled = batches = 0
    for batch in conn.pull_changes(directory, None):
        pulled += len(batch.deals) + len(batch.rejected)
        batches += 1
    assert (pulled, batches) == (400, 8)  # the whole org, in batches of deals_per_batch
    assert measuring.queries > 4 * EARLY, "the org must span more query pages than the second measure"
    # nothing mapped is held between pages: every deal and touch read so far is in the spill
    assert measuring.measures == {EARLY: before, 4 * EARLY: before}


def test_the_spill_hands_back_every_deal_in_order_with_the_touches_on_its_contacts() -> None:
    """Batches of the asked size in the order added, each with the touches on its own contacts that one of
    its deals takes from another record (a bad touch comes back as the ``BadValue`` it was); SQLite's page
    cache is set to its bound."""
    touch = Activity(
        "00T1", ActivityKind.CALL, Direction.INBOUND, NOW, Outcome.CONNECTED, ("003A", "003C"), True
    )
    deals = [deal(f"006{n:03}", contacts=(contact("003A"),), activities=(touch,)) for n in range(5)]
    with DealSpill() as spill:
        assert spill.page_cache_kib == CACHE_KIB
        unreadable = BadValue("Event:00U1.StartDateTime", "unreadable", "'x' is not a date")
        spill.add(deals[:3], [("003A", "006000", touch), ("003B", "006001", unreadable)])
        spill.add(deals[3:], [("003B", "006004", touch)])
        handed = list(spill.batches(2))
        of_b = [deal("006001", contacts=(contact("003B"),)), deal("006004", contacts=(contact("003B"),))]
        (_, bad), (_, good) = spill.touches_for(of_b)["003B"]
        alone = spill.touches_for([deal("006000", contacts=(contact("003A"),))])
    assert isinstance(bad, BadValue)
    assert (bad.field, bad.reason, bad.detail) == (unreadable.field, unreadable.reason, unreadable.detail)
    assert good == touch  # every field comes back
    ids = [[d.id for d in group] for group, _ in handed]
    assert ids == [["006000", "006001"], ["006002", "006003"], ["006004"]]
    assert handed[0][0] == deals[:2]  # the same aggregates, activities and all
    assert handed[0][1] == {"003A": [("006000", touch)]}  # 006001 takes it from 006000
    assert handed[1][1] == {"003A": [("006000", touch)]}
    assert alone == {}  # a touch's own deal has it already: not even read


def test_a_touch_is_stored_with_every_field_of_activity() -> None:
    """The spill's touch columns name Activity's fields: a field added to the model must be stored too."""
    assert tuple(f.name for f in dataclasses.fields(Activity)) == TOUCH_COLUMNS


def test_a_spill_left_unfinished_closes_from_another_thread() -> None:
    """A pull's generator let go part-way is closed by whichever thread drops it: its spill closes there."""

    def pull() -> Generator[list[Deal], None, None]:
        with DealSpill() as spill:
            spill.add([deal("006001"), deal("006002")], [])
            for group, _ in spill.batches(1):
                yield group

    batches = pull()
    assert [d.id for d in next(batches)] == ["006001"]
    errors: list[BaseException] = []

    def close() -> None:
        try:
            batches.close()
        except BaseException as exc:  # whatever it is, the test reports it
            errors.append(exc)

    thread = threading.Thread(target=close)
    thread.start()
    thread.join()
    assert errors == []


def _task_rows_alive() -> int:
    gc.collect()
    return sum(
        1
        for o in gc.get_objects()
        if isinstance(o, dict)
        and isinstance(o.get("attributes"), dict)
        and o["attributes"].get("type") == "Task"
    )


class MeasuringEveryQuery(BaseAdapter):
    """Passes every request to ``inner``; before each query call, counts the Task rows alive."""

    def __init__(self, inner: BaseAdapter) -> None:
        super().__init__()
        self.inner = inner
        self.task_rows: list[int] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if "/query" in (request.path_url or ""):
            self.task_rows.append(_task_rows_alive())
        return self.inner.send(request, *args, **kwargs)

    def close(self) -> None:
        self.inner.close()


def test_the_incremental_window_is_handled_page_by_page(tmp_path: Path) -> None:
    """After a big cycle the window holds most of the org's Tasks (our own among them): the incremental
    pull handles its changed rows a page at a time and keeps none of them between pages."""
    with running_salesforce_sandbox(seed=5, deals=60, now=NOW) as box:
        conn = connector(options(box, tmp_path / "token", query_batch_size=200, queries_per_call=1))
        directory = conn.read_directory()
        cursor = pull_all(conn, directory, None)[-1].cursor
        sf = plain_client(box)
        opportunities = [r["Id"] for r in sf.query("SELECT Id FROM Opportunity")["records"]]
        tasks = [
            {
                "attributes": {"type": "Task"},
                "WhatId": opportunities[n % len(opportunities)],
                "Subject": "Call",
                "Status": "Completed",
                "TaskSubtype": "Call",
            }
            for n in range(1_000)
        ]
        for start in range(0, len(tasks), 200):
            sf.restful("composite/sobjects", method="POST", json={"records": tasks[start : start + 200]})
        del tasks
        measuring = MeasuringEveryQuery(conn.client.session.get_adapter(box.instance_url))
        conn.client.session.mount(box.instance_url, measuring)
        before = _task_rows_alive()
        batches = pull_all(conn, directory, cursor)
        close_all()
    assert sum(len(b.deals) for b in batches) == len(opportunities)  # every deal got a new call
    # The first query calls are the window's changed Tasks, 200 rows a page (one page a call); before each
    # of the next pages at most the page being handled is alive, never the pages before it. (The changed
    # deals' aggregates that follow are read whole, by design: the deals that changed, not the window.)
    window = measuring.task_rows[:5]
    assert len(window) == 5
    assert max(window) - before <= 200, window
