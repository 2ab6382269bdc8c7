"""Live history pulls through the official clients against both sandboxes, on hand-built histories.

The pipeline is built by hand as a CRM-neutral dataset (``crm_sandbox.dataset``) and served by each
sandbox in its CRM's shapes (HubSpot: ``propertiesWithHistory``; Salesforce: ``OpportunityHistory``). The
connector pulls it (``sync.history.pull_history_snapshot``, with the state store's history tables); the
backtest of that live snapshot must give exactly the outcomes of the same pipeline as a snapshot
(``cli.demo_snapshot.snapshot_from_dataset``): a deal won after 8 unanswered touches is a false kill for
``max_unanswered_touches: 6`` and not for 10, a deal lost after 9 is a true stop that saved 22 days; with a
third deal whose agreed 14-day callback came on day 20, the whole report is the snapshot's (up to the CRM's
ids) and that callback is late. Then a change in the CRM: the next pull reads only that deal's history, and
the API calls are counted.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from crm_sandbox.dataset import (
    Archetype,
    Dataset,
    GenActivity,
    GenCompany,
    GenContact,
    GenDeal,
    GenDealContact,
    GenFieldChange,
    GenOwner,
)
from crm_sandbox.hubspot import RateLimitConfig, running_hubspot_sandbox
from crm_sandbox.pipelines import PIPELINES
from crm_sandbox.salesforce import running_salesforce_sandbox
from crm_sandbox.salesforce.ids import counter_of

from connectors.hubspot import HubSpotOptions, build_hubspot_connector
from connectors.hubspot.history import HISTORY_BATCH_SIZE
from connectors.salesforce import SalesforceOptions, build_salesforce_connector
from connectors.sandbox_dataset import snapshot_from_dataset
from policies.backtest import Period, run_backtest
from policies.codec import Snapshot
from policies.sweep import parse_sweep, variants
from store import StateStore
from store.history import HistoryStore
from sync.history import HistoryConnector, pull_history_snapshot
from tests.clocks import FakeTime
from tests.sobjects import sobject
from tests.unit.builders import policy

START = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)  # a Monday
PERIOD = Period(date(2026, 1, 5), date(2026, 3, 31), timedelta(hours=1))
TAKEN = datetime(2026, 4, 15, 12, 0, tzinfo=UTC)
SINCE = datetime(2026, 1, 5, tzinfo=UTC)
WON_AT = datetime(2026, 3, 20, 11, 0, tzinfo=UTC)
LOST_AT = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
STAGE_IDS = {s.label: s.id for p in PIPELINES for s in p.stages}


def _deal(number: int, stage_id: str, end_at: datetime) -> GenDeal:
    created = START - timedelta(days=3)
    return GenDeal(
        id=number,
        name=f"Deal {number}",
        archetype=Archetype.WON_AFTER_SILENCE if stage_id == "closedwon" else Archetype.LOST_AFTER_TOUCHES,
        pipeline_id="default",
        stage_id=stage_id,
        amount=10_000.0,
        currency="EUR",
        owner_id=1,
        company_id=1,
        created_at=created,
        modified_at=end_at,
        stage_entered_at=end_at,
        close_date=end_at.date(),
        next_step="Send the pricing proposal for 50 seats",
        next_step_why="They need it for the budget round",
        next_step_date=date(2026, 3, 20),
        agreed_interval_days=None,
        agreed_channel=None,
        readiness="unknown",
        qualification_score=80.0,
        closed_lost_reason=None,
        contacts=(GenDealContact(number, "decision_maker", True),),
    )


def _activities(deal: GenDeal, first_id: int, touches: int, end_at: datetime) -> list[GenActivity]:
    """A reply the day before the period, ``touches`` weekly unanswered calls, and for the win a reply 11
    days before it (the hand-built history of tests/unit/test_backtest.py)."""

    def make(number: int, kind: str, direction: str, when: datetime, outcome: str) -> GenActivity:
        from crm_sandbox.dataset import ActivityKind

        return GenActivity(
            id=first_id + number,
            kind=ActivityKind(kind),
            deal_id=deal.id,
            contact_id=deal.contacts[0].contact_id,
            owner_id=1,
            direction=direction,
            occurred_at=when,
            outcome=outcome,
            subject=f"{kind} {number}",
            body="",
            duration_s=60 if kind == "call" else None,
        )

    found = [make(0, "email", "inbound", START - timedelta(days=1), "replied")]
    found += [
        make(n + 1, "call", "outbound", START + timedelta(days=7 * (n + 1)), "no_answer")
        for n in range(touches)
    ]
    if deal.stage_id == "closedwon":
        found.append(make(touches + 1, "email", "inbound", end_at - timedelta(days=11), "replied"))
    return found


def hand_built() -> Dataset:
    won, lost = _deal(1, "closedwon", WON_AT), _deal(2, "closedlost", LOST_AT)
    contacts = tuple(
        GenContact(n, "Kim", f"Buyer{n}", f"kim{n}@example.com", "+4930000", 1, "CFO", "UTC", START, START)
        for n in (1, 2)
    )
    history = tuple(
        row
        for deal, end_at in ((won, WON_AT), (lost, LOST_AT))
        for row in (
            GenFieldChange(deal.id, deal.created_at, "stage", "qualifiedtobuy"),
            GenFieldChange(deal.id, end_at, "stage", deal.stage_id),
        )
    )
    return Dataset(
        seed=99,
        now=TAKEN,
        owners=(GenOwner(1, "Alex", "Rep", "alex@example.com", "UTC", team="north"),),
        companies=(GenCompany(1, "Acme", "acme.example", "Software", "DE", 1),),
        contacts=contacts,
        pipelines=PIPELINES,
        deals=(won, lost),
        activities=(*_activities(won, 100, 8, WON_AT), *_activities(lost, 200, 9, LOST_AT)),
        history=history,
    )


@dataclass
class Live:
    crm: str
    connector: HistoryConnector
    sandbox: Any
    neutral_id: Any  # CRM deal id -> dataset deal id


@contextmanager
def live(crm: str, dataset: Dataset, tmp_path: Path) -> Iterator[Live]:
    if crm == "hubspot":
        with running_hubspot_sandbox(dataset=dataset, now=TAKEN, rate_limits=RateLimitConfig.off()) as hs:
            os.environ["HISTORY_PULL_HUBSPOT_TOKEN"] = hs.access_token
            options = HubSpotOptions.model_validate(
                {
                    "host": hs.base_url,
                    "access_token_env": "HISTORY_PULL_HUBSPOT_TOKEN",
                    "activity_lookback_days": 3650,
                }
            )
            paced = FakeTime()  # the limiter's waits pass without taking real time
            connector = build_hubspot_connector(
                options, now=hs.portal.clock.now, monotonic=paced.monotonic, sleep=paced.sleep
            )
            yield Live(crm, connector, hs, int)
            connector.close()
        return
    with running_salesforce_sandbox(dataset=dataset, now=TAKEN) as box:
        token = tmp_path / "token"
        token.write_text(box.org.issue_token())
        options_sf = SalesforceOptions.model_validate(
            {
                "instance_url": box.instance_url,
                "ca_file": str(box.ca_file),
                "auth": {"kind": "access_token", "access_token_file": str(token)},
                "stage_ids": STAGE_IDS,
            }
        )
        paced = FakeTime()
        salesforce = build_salesforce_connector(
            options_sf, now=box.org.clock.now, monotonic=paced.monotonic, sleep=paced.sleep
        )
        yield Live(crm, salesforce, box, counter_of)
        salesforce.close()


def _outcomes(snapshot: Snapshot, neutral_id: Any) -> list[list[tuple[Any, ...]]]:
    """Per variant, every stop with what became of it, in CRM-neutral terms."""
    report = run_backtest(
        snapshot, variants([("test", policy())], [parse_sweep("stop.max_unanswered_touches=6,10")]), PERIOD
    )
    return [
        sorted(
            (
                neutral_id(item["deal_id"]),
                item["kind"],
                item["rule"],
                item["stopped_at"],
                item["outcome"],
                item["outcome_on"],
                item["amount"],
                item["days_saved"],
            )
            for item in (*variant["false_kills"], *variant["true_stops"])
        )
        for variant in report["variants"]
    ]


class CountingHistory:
    """The connector, with the API calls its history reads spend counted apart (``history_calls``)."""

    def __init__(self, connector: HistoryConnector) -> None:
        self._connector = connector
        self.history_calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connector, name)

    def read_histories(self, *args: Any, **kwargs: Any) -> Any:
        before = self._connector.usage().calls
        try:
            return self._connector.read_histories(*args, **kwargs)
        finally:
            self.history_calls += self._connector.usage().calls - before


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_a_live_pull_gives_the_outcomes_of_the_equivalent_snapshot(crm: str, tmp_path: Path) -> None:
    dataset = hand_built()
    expected = _outcomes(snapshot_from_dataset(dataset), int)
    assert expected == [
        [
            (1, "stop", "stop", "2026-02-16T15:00:00+00:00", "won", "2026-03-20", 10_000, None),
            (2, "stop", "stop", "2026-02-16T15:00:00+00:00", "lost", "2026-03-10", 10_000, 22.0),
        ],
        [],  # with max 10 neither deal is stopped: the won deal is no false kill
    ]
    store = StateStore(f"sqlite:///{tmp_path / 'state.sqlite'}")
    with live(crm, dataset, tmp_path) as crm_side:
        connector = crm_side.connector
        directory = connector.read_directory()
        pulled = pull_history_snapshot(
            connector,
            directory,
            since=SINCE,
            now=lambda: TAKEN,
            store=HistoryStore(store.engine),
            account="a",
        )
        assert pulled.full
        assert pulled.histories_read == 2
        assert pulled.rejected == ()
        assert _outcomes(pulled.snapshot, crm_side.neutral_id) == expected
        history = pulled.snapshot.history
        assert history is not None
        [won_id] = [d.id for d in pulled.snapshot.deals if crm_side.neutral_id(d.id) == 1]
        stages = [(c.at, c.value) for c in history.deals[won_id].changes if c.field == "stage"]
        assert stages == [(START - timedelta(days=3), "qualifiedtobuy"), (WON_AT, "closedwon")]
    store.close()


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_the_next_pull_reads_only_the_changed_deal_and_counts_its_calls(crm: str, tmp_path: Path) -> None:
    """First pull: everything, histories in the fewest calls the limits allow. A rep edits one deal's next
    step; the next pull is incremental, reads one history (one call), and the new value is in it."""
    dataset = hand_built()
    store = StateStore(f"sqlite:///{tmp_path / 'state.sqlite'}")
    with live(crm, dataset, tmp_path) as crm_side:
        connector, sandbox = CountingHistory(crm_side.connector), crm_side.sandbox
        directory = connector.read_directory()
        histories = HistoryStore(store.engine)

        def pull() -> Any:
            return pull_history_snapshot(
                cast("HistoryConnector", connector),
                directory,
                since=SINCE,
                now=lambda: TAKEN,
                store=histories,
                account="a",
            )

        first = pull()
        # HubSpot: one batch read per 50 deals; Salesforce: the FieldDefinition query and one query per
        # history object, bundled in one Composite call
        assert connector.history_calls == math.ceil(2 / HISTORY_BATCH_SIZE) == 1
        edited_at = TAKEN + timedelta(hours=1)
        sandbox.control.set_clock(edited_at)
        [lost_id] = [d.id for d in first.snapshot.deals if crm_side.neutral_id(d.id) == 2]
        if crm == "hubspot":
            from hubspot import HubSpot

            sdk = HubSpot(access_token=sandbox.access_token, host=sandbox.base_url)
            sdk.crm.deals.basic_api.update(
                lost_id, {"properties": {"hs_next_step": "Ask for the budget call"}}
            )
        else:
            from tests.connectors.salesforce.sandbox_helpers import plain_client

            sobject(plain_client(sandbox), "Opportunity").update(
                lost_id, {"NextStep": "Ask for the budget call"}
            )
        second = pull()
        assert not second.full
        assert second.histories_read == 1
        assert connector.history_calls == 2  # one more call: one deal's history
        steps = [c for c in second.snapshot.history.deals[lost_id].changes if c.field == "next_step"]
        assert steps[-1].value == "Ask for the budget call"
        assert abs(steps[-1].at - edited_at) < timedelta(seconds=5)
        third = pull()
        assert third.histories_read == 0  # nothing changed: no history read at all
        assert connector.history_calls == 2
        assert len(third.snapshot.deals) == 2
    store.close()


def test_hubspot_reads_the_histories_of_120_deals_in_3_calls(tmp_path: Path) -> None:
    """50 deals per history batch read (the limit HubSpot documents for history reads): ceil(120/50) = 3."""
    from crm_sandbox.dataset import generate

    dataset = generate(4, 120, TAKEN, history=True)
    with live("hubspot", dataset, tmp_path) as crm_side:
        connector = CountingHistory(crm_side.connector)
        directory = connector.read_directory()
        deals = [d for b in connector.pull_changes(directory, None) for d in b.deals]
        read = connector.read_histories(deals, directory)
        assert connector.history_calls == 3
        assert len(read.changes) == 120
        assert read.rejected == ()
        assert read.untracked == ()
        assert sum(len(v) for v in read.changes.values()) >= sum(
            1 for r in dataset.history if r.field != "contact_added"
        )


def test_salesforce_names_the_fields_whose_history_tracking_is_off(tmp_path: Path) -> None:
    """Tracking off for NextStep and the readiness field: both come back untracked, with a note that says
    what is approximated and where to turn tracking on; their changes are not read."""
    from crm_sandbox.salesforce.history import set_history_tracking, tracked_fields

    dataset = hand_built()
    with live("salesforce", dataset, tmp_path) as crm_side:
        store = crm_side.sandbox.org.store
        keep = tracked_fields(store, "Opportunity") - {"NextStep", "Followup_Readiness__c"}
        set_history_tracking(store, "Opportunity", sorted(keep))
        directory = crm_side.connector.read_directory()
        deals = [d for b in crm_side.connector.pull_changes(directory, None) for d in b.deals]
        read = crm_side.connector.read_histories(deals, directory, all_since=SINCE)
    assert set(read.untracked) == {"next_step", "readiness"}
    [note] = read.notes
    assert "NextStep (next_step)" in note
    assert "Followup_Readiness__c (readiness)" in note
    assert "current values throughout" in note
    assert "Set History Tracking" in note
    assert read.since is not None
    assert read.since < TAKEN - timedelta(days=540)


TALK_AT = datetime(2026, 1, 7, 10, 0, tzinfo=UTC)  # a Wednesday: the 14-day callback is due Wed 2026-01-21


def _callback_deal(
    number: int, called_back_after: int
) -> tuple[GenDeal, list[GenActivity], list[GenFieldChange]]:
    """A connected call on Wed 2026-01-07 10:00 after which the rep records an agreed 14-day callback, and
    the callback (a connected call) ``called_back_after`` days later (as in tests/unit/test_backtest.py)."""
    from crm_sandbox.dataset import ActivityKind

    created = TALK_AT - timedelta(days=10)
    callback_at = TALK_AT + timedelta(days=called_back_after)
    gen = replace(
        _deal(number, "presentationscheduled", callback_at),
        archetype=Archetype.CALL_ME_IN_TWO_WEEKS,
        created_at=created,
        close_date=date(2026, 6, 30),
        next_step_date=date(2026, 6, 1),
        agreed_interval_days=14,
        agreed_channel="call",
    )
    calls = [
        GenActivity(
            id=300 + n,
            kind=ActivityKind.CALL,
            deal_id=number,
            contact_id=gen.contacts[0].contact_id,
            owner_id=1,
            direction="outbound",
            occurred_at=when,
            outcome="connected",
            subject=f"call {n}",
            body="",
            duration_s=600,
        )
        for n, when in enumerate((TALK_AT, callback_at))
    ]
    rows = [
        GenFieldChange(number, created, "stage", "presentationscheduled"),
        GenFieldChange(number, created, "agreed_interval_days", None),
        GenFieldChange(number, TALK_AT + timedelta(minutes=5), "agreed_interval_days", 14),
        GenFieldChange(number, created, "agreed_channel", None),
        GenFieldChange(number, TALK_AT + timedelta(minutes=5), "agreed_channel", "call"),
    ]
    return gen, calls, rows


def with_a_callback(called_back_after: int) -> Dataset:
    """The hand-built pipeline plus deal 3, whose agreed 14-day callback came ``called_back_after`` days
    after the conversation."""
    base = hand_built()
    gen, calls, rows = _callback_deal(3, called_back_after)
    contact = replace(base.contacts[0], id=3, last_name="Buyer3", email="kim3@example.com")
    return replace(
        base,
        contacts=(*base.contacts, contact),
        deals=(*base.deals, replace(gen, contacts=(GenDealContact(3, "decision_maker", True),))),
        activities=(*base.activities, *calls),
        history=(*base.history, *rows),
    )


def _crm_ids(live_snapshot: Snapshot, snapshot: Snapshot, neutral_id: Any) -> dict[str, str]:
    """The CRM's deal and activity ids -> the snapshot's (activities matched by deal, time and kind)."""
    ids: dict[str, str] = {}
    mine = {d.id: d for d in snapshot.deals}
    for found in live_snapshot.deals:
        neutral = mine[str(neutral_id(found.id))]
        ids[found.id] = neutral.id

        def order(activity: Any) -> tuple[datetime, str]:
            return activity.occurred_at, activity.kind

        pairs = zip(sorted(found.activities, key=order), sorted(neutral.activities, key=order), strict=True)
        ids.update((a.id, b.id) for a, b in pairs)
    return ids


def _neutral_report(report: dict[str, Any], ids: dict[str, str]) -> Any:
    """The report with the CRM's ids replaced by the snapshot's, wherever they stand in its text."""
    text = json.dumps(report, sort_keys=True)
    for crm_id, neutral in sorted(ids.items(), key=lambda item: -len(item[0])):
        text = re.sub(rf"(?<![\w:]){re.escape(crm_id)}(?![\w])", neutral, text)
    found = json.loads(text)
    found["snapshot"].pop("crm")
    return found


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_a_live_backtest_reports_exactly_what_the_snapshot_backtest_reports(crm: str, tmp_path: Path) -> None:
    """The whole report (every variant's stops, false kills, busy work, nurture, API calls; compliance and
    completeness; the history notes) of the pipeline pulled live through the official client equals the
    report of the same pipeline as a snapshot, up to the CRM's ids; and the 14-day callback made on day 20
    is late on both, by four business days."""
    dataset = with_a_callback(20)
    chosen = variants([("test", policy())], [parse_sweep("stop.max_unanswered_touches=6,10")])
    snapshot = snapshot_from_dataset(dataset)
    with live(crm, dataset, tmp_path) as crm_side:
        connector = crm_side.connector
        pulled = pull_history_snapshot(
            connector, connector.read_directory(), since=SINCE, now=lambda: TAKEN, store=None, account="a"
        )
        assert pulled.rejected == ()
        ids = _crm_ids(pulled.snapshot, snapshot, crm_side.neutral_id)
        [owner] = [o for o in pulled.snapshot.owners if o.email == "alex@example.com"]
        ids[owner.id] = "1"
        report = run_backtest(pulled.snapshot, chosen, PERIOD)
    # the Salesforce connector reads no team for a user: the snapshot's owner gets the one the CRM gave
    owners = tuple(replace(o, team=owner.team) for o in snapshot.owners)
    expected = run_backtest(replace(snapshot, owners=owners), chosen, PERIOD)
    assert expected["compliance"]["account"]["late"] == 1
    assert expected["compliance"]["account"]["business_days_late"]["max"] == 4.0
    assert expected["variants"][0]["false_kills"], "the comparison must cover false kills"
    assert report["history"]["untracked_fields"] == []
    # Salesforce keeps field history 18 months: the live history says where it starts, a snapshot need not
    since = report["history"].pop("since")
    assert (since is None) == (crm == "hubspot")
    expected["history"].pop("since")
    snapshot_side = _neutral_report(expected, {})
    snapshot_side["snapshot"]["owners"] = report["snapshot"]["owners"]  # the CRM lists its other users too
    assert _neutral_report(report, ids) == snapshot_side


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
@pytest.mark.parametrize(
    ("called_back_after", "verdict", "late_by"),
    [(20, "late", 4.0), (14, "on_time", 0.0), (9, "early", 0.0)],
)
def test_a_14_day_callback_pulled_live_made_on_day_20_is_late(
    crm: str, called_back_after: int, verdict: str, late_by: float, tmp_path: Path
) -> None:
    """Through the official client: the agreed interval comes from the CRM's field history (HubSpot's
    property versions, Salesforce's OpportunityFieldHistory), the calls from the CRM's activities; due Wed
    2026-01-21 with one business day's tolerance either side, day 20 (Tue 01-27) is late by four business
    days, day 14 on time, day 9 early."""
    dataset = with_a_callback(called_back_after)
    with live(crm, dataset, tmp_path) as crm_side:
        connector = crm_side.connector
        pulled = pull_history_snapshot(
            connector, connector.read_directory(), since=SINCE, now=lambda: TAKEN, store=None, account="a"
        )
        [callback_id] = [d.id for d in pulled.snapshot.deals if crm_side.neutral_id(d.id) == 3]
        report = run_backtest(pulled.snapshot, variants([("test", policy())], []), PERIOD)
    counts = report["compliance"]["account"]
    # the callback is a conversation too: the next callback it owes never came (the history ends 04-15)
    assert (counts["agreements"], counts[verdict], counts["never"]) == (2, 1, 1)
    assert counts["business_days_late"]["max"] == late_by
    history = pulled.snapshot.history
    assert history is not None
    intervals = [
        (c.at, c.value) for c in history.deals[callback_id].changes if c.field == "agreed_interval_days"
    ]
    assert intervals[-1] == (TALK_AT + timedelta(minutes=5), 14)
