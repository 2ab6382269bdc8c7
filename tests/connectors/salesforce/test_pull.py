"""Unit tests for full and incremental pulls (pull.py) against a scripted Salesforce transport."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import requests

from connectors.base import Directory
from connectors.salesforce import SalesforceConnector
from tests.connectors.salesforce.conftest import FakeClock
from tests.connectors.salesforce.fake_transport import ScriptedSalesforce, query_page, soql_of
from tests.connectors.salesforce.records import CONTACT_A, CONTACT_B, email, event, opportunity, role, task

QUERY = "/services/data/v62.0/query/"
QUERY_ALL = "/services/data/v62.0/queryAll/"
OPP_1, OPP_2, OPP_3 = "0065g00000000AAAAA", "0065g00000000BAAAA", "0065g00000000CAAAA"
OPP_4 = "0065g00000000AZAAA"  # after OPP_1 and before OPP_2 in Id order


def full_pull_server(scripted: ScriptedSalesforce, on_more: Callable[[], None] = lambda: None) -> list[str]:
    """Two opportunity pages (paged by nextRecordsUrl) and one e-mail page ordered by RelatedToId."""
    texts: list[str] = []

    def query(request: requests.PreparedRequest) -> tuple[int, Any]:
        path = request.path_url
        if path.startswith(QUERY + "01g"):
            texts.append("more")
            on_more()
            return 200, query_page([opportunity(OPP_3, roles=[role(CONTACT_A, "Influencer")])])
        text = soql_of(request)
        texts.append(text)
        if "FROM EmailMessage" in text:
            return 200, query_page([email("02s1", OPP_1, Incoming=True), email("02s3", OPP_3)])
        first = opportunity(OPP_1, roles=[role(CONTACT_A, "Decision Maker")])
        second = opportunity(
            OPP_2,
            tasks=[task("00T2", TaskSubtype="Call", CallDisposition="Connected")],
            roles=[role(CONTACT_A, "Champion")],
        )
        return 200, query_page([first, second], "/services/data/v62.0/query/01gX-2")

    scripted.on("GET", QUERY, query)
    return texts


def test_full_pull_pages_merges_emails_and_attributes_contact_touches(
    make_connector: Callable[..., SalesforceConnector], scripted: ScriptedSalesforce
) -> None:
    """A full pull follows nextRecordsUrl, merges e-mails, and counts a contact's touch on all its deals."""
    texts = full_pull_server(scripted)
    connector = make_connector()
    (batch,) = list(connector.pull_changes(Directory(), None))
    deals = {d.id: d for d in batch.deals}
    assert sorted(deals) == [OPP_1, OPP_2, OPP_3]
    assert "full_pending" not in batch.cursor
    assert batch.cursor["full_at"]
    assert [a.id for a in deals[OPP_1].activities] == ["00T2", "02s1"]  # the call on OPP_2 was with Ada
    assert [a.id for a in deals[OPP_3].activities] == ["00T2", "02s3"]
    assert [a.id for a in deals[OPP_2].activities] == ["00T2"]
    assert len(texts) == 3  # opportunities, e-mails, one more page: nothing per deal
    assert connector.usage().calls == 2  # each stream's pages chained in one Composite call


def test_full_pull_gives_earlier_deals_the_touches_of_later_pages(
    make_connector: Callable[..., SalesforceConnector], scripted: ScriptedSalesforce
) -> None:
    """Deals come back from the spill with the touches logged on their contacts on any page, later ones
    included; an unreadable touch on a later page rejects an earlier deal of that contact, and the batches
    of ``deals_per_batch`` carry the pending cursor until the last."""
    more = QUERY + "01gX-"
    pages = {
        "first": query_page(
            [
                opportunity(OPP_1, roles=[role(CONTACT_A, "Champion")]),
                opportunity(OPP_4, roles=[role(CONTACT_B, None)]),
            ]
        ),
        more + "2": query_page([opportunity(OPP_2, tasks=[task("00T2")], roles=[role(CONTACT_A, None)])]),
        more + "3": query_page(
            [opportunity(OPP_3, events=[event("00U3", "not a date", WhoId=CONTACT_B)], roles=[])]
        ),
    }
    pages["first"] = {**pages["first"], "done": False, "nextRecordsUrl": more + "2"}
    pages[more + "2"] = {**pages[more + "2"], "done": False, "nextRecordsUrl": more + "3"}

    def query(request: requests.PreparedRequest) -> tuple[int, Any]:
        path = request.path_url
        if path.startswith(more):
            return 200, pages[path]
        return 200, query_page([]) if "FROM EmailMessage" in soql_of(request) else pages["first"]

    scripted.on("GET", QUERY, query)
    batches = list(make_connector(deals_per_batch=1).pull_changes(Directory(), None))
    assert [[d.id for d in b.deals] for b in batches] == [[OPP_1], [], [OPP_2]]
    assert [b.cursor.get("full_pending") for b in batches] == ["1", "1", None]
    assert [a.id for a in batches[0].deals[0].activities] == ["00T2"]  # logged with Ada on OPP_2, later
    assert [a.id for a in batches[2].deals[0].activities] == ["00T2"]
    # OPP_3 is rejected by its own event (reported with the first batch), OPP_4 by that event on contact B
    assert [[r.record_id for r in b.rejected] for b in batches] == [[OPP_3], [OPP_4], []]
    assert batches[0].rejected[0].field == batches[1].rejected[0].field == "Event:00U3.StartDateTime"


def test_interrupted_full_pull_starts_over(
    make_connector: Callable[..., SalesforceConnector], scripted: ScriptedSalesforce
) -> None:
    """A cursor stored in the middle of a full pull leads to a new full pull, not an incremental one."""
    texts = full_pull_server(scripted)
    list(
        make_connector().pull_changes(
            Directory(), {"full_pending": "1", "opportunity": "2026-03-05T11:00:00+00:00"}
        )
    )
    assert texts[0].endswith("FROM Opportunity ORDER BY Id")


def test_incremental_pull_reads_changes_deletions_and_activity_parents(
    make_connector: Callable[..., SalesforceConnector], scripted: ScriptedSalesforce, clock: FakeClock
) -> None:
    """Changed and deleted opportunities, and opportunities whose tasks changed, come back as aggregates."""
    seen: list[str] = []

    def query_all(request: requests.PreparedRequest) -> tuple[int, Any]:
        text = soql_of(request)
        seen.append(text)
        if "FROM Opportunity WHERE SystemModstamp" in text:
            assert "(SELECT" not in text  # the changed records alone: aggregates only for what is pulled
            return 200, query_page(
                [
                    opportunity(OPP_1, SystemModstamp="2026-03-05T11:00:00.000+0000"),
                    opportunity(OPP_2, IsDeleted=True, SystemModstamp="2026-03-05T11:01:00.000+0000"),
                ]
            )
        if "FROM Task WHERE" in text:
            return 200, query_page([{"WhatId": OPP_3, "SystemModstamp": "2026-03-05T11:30:00.000+0000"}])
        return 200, query_page([])

    def query(request: requests.PreparedRequest) -> tuple[int, Any]:
        text = soql_of(request)
        seen.append(text)
        if "FROM Opportunity WHERE Id IN" in text:
            assert f"('{OPP_1}','{OPP_3}')" in text  # the changed one and the one a new Task named
            return 200, query_page([opportunity(OPP_1), opportunity(OPP_3, tasks=[task("00T1")])])
        return 200, query_page([])  # e-mails, and the contacts' touches

    scripted.on("GET", QUERY_ALL, query_all)
    scripted.on("GET", QUERY, query)
    cursor = {
        "full_at": "2026-03-05T06:00:00+00:00",
        **dict.fromkeys(
            ("opportunity", "task", "event", "email", "contact_role"), "2026-03-05T10:00:00+00:00"
        ),
    }
    (batch,) = list(make_connector().pull_changes(Directory(), cursor))
    assert [d.id for d in batch.deals] == [OPP_1, OPP_3]
    assert batch.removed_deal_ids == (OPP_2,)
    assert batch.cursor["opportunity"] == "2026-03-05T11:01:00+00:00"
    assert batch.cursor["task"] == "2026-03-05T11:30:00+00:00"
    assert batch.cursor["event"] == "2026-03-05T10:00:00+00:00"  # nothing newer seen: unchanged
    assert "SystemModstamp >= 2026-03-05T09:58:00Z" in seen[0]  # two minutes of overlap
    assert len(seen) == 9  # 4 child objects, opportunities, their aggregates, e-mails, contacts' touches


def test_reconciliation_interval_forces_a_full_pull(
    make_connector: Callable[..., SalesforceConnector], scripted: ScriptedSalesforce, clock: FakeClock
) -> None:
    """A cursor whose last full pull is older than the interval triggers a full pull."""
    texts = full_pull_server(scripted)
    cursor = {"full_at": (clock.now - timedelta(days=8)).isoformat(), "opportunity": clock.now.isoformat()}
    list(make_connector().pull_changes(Directory(), cursor))
    assert texts[0].endswith("FROM Opportunity ORDER BY Id")


def test_full_pull_watermark_stays_before_the_pull_started(
    make_connector: Callable[..., SalesforceConnector], scripted: ScriptedSalesforce, clock: FakeClock
) -> None:
    """The final cursor is the newest SystemModstamp seen minus the pull's duration."""

    def ten_minutes_pass() -> None:
        clock.now += timedelta(minutes=10)

    full_pull_server(scripted, on_more=ten_minutes_pass)
    (last,) = list(make_connector().pull_changes(Directory(), None))
    newest = datetime.fromisoformat("2026-03-04T12:00:01+00:00")  # records' SystemModstamp
    assert datetime.fromisoformat(last.cursor["opportunity"]) == newest - timedelta(minutes=10)
