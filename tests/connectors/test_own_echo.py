"""The pure parts of "our own writes never count as someone else's change", as tables.

* ``connectors.held_back``: a stop or nurture whose deal write did not go ahead keeps its task closes and
  enrolment back, and only those of that deal;
* ``connectors.hubspot.echo``: which searched deals and tasks are our own writes' echo;
* ``connectors.salesforce.auth.user_of``: whose token it is, from the identity URL;
* ``sync.effects.mirror_after``: the mirror keeps the stamps the CRM answered, never the worker's clock;
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.base import ActionOutcome, Directory, OutcomeStatus
from connectors.held_back import held_back
from connectors.hubspot.echo import DealEchoes, Records, own_task_echoes
from connectors.hubspot.fetch import Associated
from connectors.hubspot.mapping import deal_from_hubspot
from connectors.hubspot.options import DEFAULT_DEAL_PROPERTIES
from connectors.retry import RetrySettings
from connectors.salesforce.auth import user_of
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.composite import CollectionWriter
from connectors.salesforce.mapping import MappingConfig
from connectors.salesforce.payloads import PayloadConfig
from connectors.salesforce.write import Writer
from policies.model import (
    Action,
    AutoTask,
    ChangeStage,
    CloseReason,
    CloseTask,
    CreateTask,
    Deal,
    DealField,
    EnrolInNurture,
    Explanation,
    Pipeline,
    RepTask,
    SetDealFields,
    Stage,
    TaskType,
)
from policies.simulate import apply_actions
from sync.effects import mirror_after

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WHY = Explanation("x")
OPEN = Stage("qualifiedtobuy", "Qualified", "default", 1)
LOST = Stage("closedlost", "Closed Lost", "default", 2, is_closed=True)
PIPELINES = {"default": Pipeline("default", "Sales", (OPEN, LOST))}
DIRECTORY = Directory(pipelines=PIPELINES)


def _stage(deal_id: str, key: str = "s") -> ChangeStage:
    return ChangeStage(
        key=f"{key}{deal_id}",
        deal_id=deal_id,
        rule_id="stop",
        explanation=WHY,
        pipeline_id="default",
        stage_id="closedlost",
        expected_modified_at=T0,
    )


def _close(deal_id: str, reason: CloseReason) -> CloseTask:
    return CloseTask(
        key=f"c{deal_id}{reason}",
        deal_id=deal_id,
        rule_id="stop",
        explanation=WHY,
        task_id=f"t{deal_id}",
        task_key=f"k{deal_id}",
        reason=reason,
    )


def _enrol(deal_id: str) -> EnrolInNurture:
    return EnrolInNurture(
        key=f"e{deal_id}",
        deal_id=deal_id,
        rule_id="nurture",
        explanation=WHY,
        contact_ids=("c",),
        nurture="N",
    )


@pytest.mark.parametrize(
    ("deal_write", "held"),
    [
        (OutcomeStatus.CONFLICT, OutcomeStatus.CONFLICT),
        (OutcomeStatus.RETRY_LATER, OutcomeStatus.RETRY_LATER),
        (OutcomeStatus.APPLIED, None),
        (OutcomeStatus.ALREADY_APPLIED, None),
        (OutcomeStatus.FAILED, None),
    ],
)
def test_a_stop_waits_whole_with_its_deal_write(
    deal_write: OutcomeStatus, held: OutcomeStatus | None
) -> None:
    """Closing tasks because the deal stopped, and enrolling its contacts, wait with a deal write that did
    not go ahead; a task closed for another reason, and another deal's stop, go ahead."""
    actions: list[Action] = [
        _stage("1"),
        _close("1", CloseReason.DEAL_STOPPED),
        _close("1", CloseReason.SETTLED),
        _enrol("1"),
        _stage("2"),
        _close("2", CloseReason.DEAL_STOPPED),
    ]
    outcomes = {
        "s1": ActionOutcome("s1", deal_write, message="deal 1 changed"),
        "s2": ActionOutcome("s2", OutcomeStatus.APPLIED),
    }
    waiting = held_back(actions, outcomes)
    if held is None:
        assert waiting == {}
    else:
        assert {k: o.status for k, o in waiting.items()} == {"c1deal_stopped": held, "e1": held}


# -------------------------------------------------------------------------------------------- HubSpot


def _record(deal_id: str, modified: datetime, **props: str) -> dict[str, Any]:
    stamp = modified.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "id": deal_id,
        "properties": {
            "dealname": f"Deal {deal_id}",
            "pipeline": "default",
            "dealstage": "qualifiedtobuy",
            "createdate": "2026-01-01T00:00:00.000Z",
            "hs_lastmodifieddate": stamp,
            "amount": "1000",
            **props,
        },
    }


def _shell(record: Any, directory: Directory) -> Deal:
    return deal_from_hubspot(record, directory.pipelines, DEFAULT_DEAL_PROPERTIES)


class Known:
    """A mirror in a dict (``connectors.base.KnownDeals``); ``asked`` records what the pull asked."""

    def __init__(self, *deals: Deal) -> None:
        self.mirror = {d.id: d for d in deals}
        self.asked: list[str] = []

    def modified_at(self, deal_ids: Collection[str]) -> Mapping[str, datetime]:
        return {i: self.mirror[i].modified_at for i in deal_ids if i in self.mirror}

    def deals(self, deal_ids: Collection[str]) -> Mapping[str, Deal]:
        self.asked.extend(deal_ids)
        return {i: self.mirror[i] for i in deal_ids if i in self.mirror}

    def wanted(self, deal: Deal) -> bool:
        return not deal.is_closed


def test_searched_deals_are_pulled_only_when_the_mirror_lacks_what_changed() -> None:
    """Same stamp as the mirror: left out. Closed and not mirrored: left out. Stamp moved but the record is
    the mirrored deal: restamped. Anything else (a rep's edit, an open deal we do not know): pulled."""
    mirrored = {i: _shell(_record(i, T0), DIRECTORY) for i in ("1", "2", "3")}
    known = Known(*mirrored.values())
    later = T0 + timedelta(seconds=5)
    found: Records = {
        "1": _record("1", T0),  # our own write's stamp, already in the mirror
        "2": _record("2", later),  # a roll-up of our task moved the stamp only
        "3": _record("3", later, amount="2000"),  # a rep changed the amount
        "4": _record("4", later, dealstage="closedlost"),  # closed, not mirrored
        "5": _record("5", later),  # open, not mirrored yet
    }
    pull, restamped = DealEchoes(known, _shell, DIRECTORY).split(found)
    assert sorted(pull) == ["3", "5"]
    assert restamped == {"2": later}
    assert sorted(known.asked) == ["2", "3"]  # aggregates decoded only where the stamp moved


def _task_hit(task_id: str, stamp: datetime, *, ours: bool = True, completed: bool = False) -> dict[str, Any]:
    body = "Call back\n\ncrm-followup key: cf-0123456789abcdef0123 rule: stop" if ours else "my own note"
    return {
        "id": task_id,
        "properties": {
            "hs_lastmodifieddate": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "hs_task_body": body,
            "hs_task_status": "COMPLETED" if completed else "NOT_STARTED",
        },
    }


def test_our_tasks_at_the_stamp_we_wrote_change_nothing() -> None:
    """A task of ours whose stamp is the one the mirror remembers is an echo; a rep's change to it (another
    stamp), a rep's own task, or an open task of ours on a deal we do not mirror are changes."""
    later = T0 + timedelta(seconds=5)
    task = AutoTask("t1", "cf-0123456789abcdef0123", "stop", T0, T0, modified_at=T0)
    closed = AutoTask("t5", "cf-0123456789abcdef0124", "stop", T0, T0, is_open=False, modified_at=T0)
    deal = dataclasses.replace(_shell(_record("1", T0), DIRECTORY), auto_tasks=(task, closed))
    hits = {
        "t1": _task_hit("t1", T0),  # our create, stamp remembered
        "t2": _task_hit("t2", later, ours=False),  # the rep's own task
        "t5": _task_hit("t5", later, completed=True),  # our task, changed again after our close
        "t6": _task_hit("t6", later, completed=True),  # our closed task on a deal we dropped
        "t7": _task_hit("t7", later),  # our open task on a deal we do not mirror
    }
    links = {
        "t1": [Associated("1", ())],
        "t2": [Associated("1", ())],
        "t5": [Associated("1", ())],
        "t6": [Associated("9", ())],
        "t7": [Associated("9", ())],
    }
    assert own_task_echoes(hits, links, Known(deal)) == {"t1", "t6"}


def test_a_reps_task_we_closed_is_an_echo_only_at_the_stamp_we_wrote() -> None:
    """Somebody's task we closed (nurture.close_rep_tasks) changes nothing while it is as we left it;
    reopened or changed again by its owner, it is a change."""
    later = T0 + timedelta(seconds=5)
    closed = RepTask("r1", "77", TaskType.CALL, is_open=False, modified_at=T0)
    still_open = RepTask("r2", "77", TaskType.CALL, modified_at=T0)
    deal = dataclasses.replace(_shell(_record("1", T0), DIRECTORY), rep_tasks=(closed, still_open))
    hits = {
        "r1": _task_hit("r1", T0, ours=False, completed=True),  # our close, as we wrote it
        "r2": _task_hit("r2", T0, ours=False, completed=True),  # its owner completed it
        "r3": _task_hit("r3", later, ours=False, completed=True),  # a task the mirror does not know
    }
    links = {k: [Associated("1", ())] for k in hits}
    assert own_task_echoes(hits, links, Known(deal)) == {"r1"}
    changed_again = {"r1": _task_hit("r1", later, ours=False, completed=True)}
    assert own_task_echoes(changed_again, {"r1": [Associated("1", ())]}, Known(deal)) == set()


def _no_mapping(directory: Directory) -> MappingConfig:
    raise AssertionError("finding our own Tasks maps no records")


def test_salesforce_tasks_written_last_by_us_and_known_to_the_mirror_are_echoes() -> None:
    """A Task is our echo when the integration user wrote it last and it is ours (key) or somebody's Task
    the mirror holds as closed by us; written last by anybody else, it is a change."""
    from connectors.salesforce.pull import Puller, PullSettings
    from connectors.salesforce.soql import OpportunityShape

    me, rep = "0055g0000000004AAA", "0055g0000000001AAA"
    closed = RepTask("00T3", rep, TaskType.CALL, is_open=False)
    deal = dataclasses.replace(_shell(_record("0065g0000000001AAA", T0), DIRECTORY), rep_tasks=(closed,))
    shape = OpportunityShape((), "Followup_Key__c", "Followup_Rule__c", 50)
    settings = PullSettings(timedelta(minutes=2), timedelta(days=7), 200, 500)
    puller = Puller(_StampsApi([]), shape, settings, clock=lambda: T0, mapping_config=_no_mapping)  # no I/O
    opp = "0065g0000000001AAA"
    rows: list[dict[str, Any]] = [
        {"Id": "00T1", "WhatId": opp, "LastModifiedById": me[:15], "Followup_Key__c": "cf-1"},  # ours
        {"Id": "00T2", "WhatId": opp, "LastModifiedById": rep, "Followup_Key__c": "cf-2"},  # ours, rep's edit
        {"Id": "00T3", "WhatId": opp, "LastModifiedById": me, "Followup_Key__c": None},  # we closed it
        {"Id": "00T4", "WhatId": opp, "LastModifiedById": me, "Followup_Key__c": None},  # someone's, unknown
    ]
    assert puller._own_tasks(rows, Known(deal), me) == {"00T1", "00T3"}
    assert puller._own_tasks(rows, Known(deal), None) == set()  # a static token: whose is unknown


# ------------------------------------------------------------------------------------------ Salesforce


@pytest.mark.parametrize(
    ("identity", "user"),
    [
        ("https://login.salesforce.com/id/00Dx0000000BV7z/005x00000012Q9P", "005x00000012Q9P"),
        ("https://test.salesforce.com/id/00D5g000000000AAAA/0055g0000000004AAA/", "0055g0000000004AAA"),
        ("https://login.salesforce.com/id/00D5g000000000AAAA", None),
        ("not a url", None),
        (None, None),
    ],
)
def test_the_integration_user_is_read_from_the_identity_url(identity: object, user: str | None) -> None:
    """The token response's ``id`` is ``.../id/<org id>/<user id>`` (Salesforce, "Using Identity URLs")."""
    assert user_of(identity) == user


# --------------------------------------------------------------------------------------------- worker


def _deal(**changes: Any) -> Deal:
    task = AutoTask("t1", "k1", "stop", T0, T0, modified_at=T0)
    base = Deal("1", "Deal 1", "default", OPEN, T0, T0, auto_tasks=(task,))
    return dataclasses.replace(base, **changes)


def test_the_mirror_keeps_the_stamps_the_crm_answered_never_the_workers_clock() -> None:
    """A deal write's answered stamp becomes the deal's; a written task's its own; with no answer the deal
    keeps the stamp it was read with (the next pull restamps or re-reads it), whatever the worker's clock."""
    now = T0 + timedelta(hours=1)
    answered = T0 + timedelta(seconds=3)
    fields = SetDealFields(
        key="f", deal_id="1", rule_id="nurture", explanation=WHY, fields={DealField.READINESS: "not_now"}
    )
    close = CloseTask(
        key="c",
        deal_id="1",
        rule_id="nurture",
        explanation=WHY,
        task_id="t1",
        task_key="k1",
        reason=CloseReason.DEAL_STOPPED,
    )
    create = CreateTask(
        key="k2",
        deal_id="1",
        rule_id="nurture",
        explanation=WHY,
        owner_id=None,
        subject="s",
        body="b",
        due_at=now,
    )
    outcomes = {
        "f": ActionOutcome("f", OutcomeStatus.APPLIED, ("1",), modified_at=answered),
        "c": ActionOutcome("c", OutcomeStatus.APPLIED, ("t1",), modified_at=answered),
        "k2": ActionOutcome("k2", OutcomeStatus.APPLIED, ("t2",), modified_at=answered),
    }
    after = mirror_after(_deal(), [fields, close, create], outcomes, now, PIPELINES, apply_actions)
    assert after.modified_at == answered
    assert [(t.id, t.is_open, t.modified_at) for t in after.auto_tasks] == [
        ("t1", False, answered),
        ("t2", True, answered),
    ]
    silent = {k: dataclasses.replace(o, modified_at=None) for k, o in outcomes.items()}
    unanswered = mirror_after(_deal(), [fields, close], silent, now, PIPELINES, apply_actions)
    assert unanswered.modified_at == T0
    assert unanswered.auto_tasks[0].modified_at is None  # changed by us, stamp unknown: not an echo later


class _StampsApi(SalesforceClient):
    """What ``Writer._with_stamps`` asks of the ``SalesforceClient``: whose token, and bundled queries (its
    other methods are the real ones, over no session: a call of one fails the test)."""

    def __init__(self, rows: list[dict[str, Any]] | None) -> None:
        self.rows = rows
        self.queries: list[str] = []

    @property
    def user_id(self) -> str | None:
        return "0055g0000000004AAA"

    def query_each(
        self, queries: Sequence[str], *, include_deleted: bool | Sequence[bool] = False
    ) -> Iterator[list[dict[str, Any]]]:
        self.queries.extend(queries)
        if self.rows is None:
            from connectors.errors import RetryLater

            raise RetryLater("salesforce composite: HTTP 503")
        return iter([self.rows])


class _NoLookups:
    """A ``WriteContext`` for reading stamps back, which asks it nothing."""

    def owner_time_zone(self, owner_id: str | None) -> str | None:
        raise AssertionError("not asked when reading stamps back")

    def task_owner_time_zones(self, task_ids: Sequence[str]) -> Mapping[str, str | None]:
        raise AssertionError("not asked when reading stamps back")

    def campaign_ids(self, names: Sequence[str]) -> Mapping[str, str]:
        raise AssertionError("not asked when reading stamps back")


def _stamps_writer(api: _StampsApi) -> Writer:
    config = PayloadConfig(
        opportunity_fields={f: f.value for f in DealField},
        task_key_field="Followup_Key__c",
        task_rule_field="Followup_Rule__c",
        open_task_status="Not Started",
        closed_task_status="Completed",
        default_time_zone="UTC",
    )
    collections = CollectionWriter(api, retry=RetrySettings(), sleep=lambda s: None)
    return Writer(
        api,
        collections,
        config,
        _NoLookups(),
        ids_per_query=200,
        keys_per_query=200,
        nurture_status="",
        responded_status="",
    )


def test_salesforce_remembers_the_stamp_of_its_own_write_only() -> None:
    """After writing, the opportunities it keeps open are read back: a stamp is taken only while the
    integration user is the last writer; one closed as lost is not read back; a failed read-back leaves
    the outcomes without stamps (the next pull reads those deals again) instead of failing the batch."""
    nurture = SetDealFields(
        key="n", deal_id="006A", rule_id="nurture", explanation=WHY, fields={DealField.READINESS: "not_now"}
    )
    edited = SetDealFields(
        key="e", deal_id="006B", rule_id="nurture", explanation=WHY, fields={DealField.READINESS: "not_now"}
    )
    lost = dataclasses.replace(_stage("006C"), close_reason="No response")
    actions: list[Action] = [nurture, edited, lost]
    outcomes = [ActionOutcome(a.key, OutcomeStatus.APPLIED, (a.deal_id,)) for a in actions]
    ours, theirs = "2026-03-02T09:00:05.000+0000", "2026-03-02T09:00:06.000+0000"
    api = _StampsApi(
        [
            {"Id": "006A", "LastModifiedDate": ours, "LastModifiedById": "0055g0000000004"},
            {"Id": "006B", "LastModifiedDate": theirs, "LastModifiedById": "0055g0000000001AAA"},
        ]
    )
    writer = _stamps_writer(api)
    stamped = writer._with_stamps(actions, outcomes)
    assert [o.modified_at for o in stamped] == [T0 + timedelta(seconds=5), None, None]
    assert len(api.queries) == 1
    assert "'006C'" not in api.queries[0]
    failing = _stamps_writer(_StampsApi(None))
    assert failing._with_stamps(actions, outcomes) == outcomes
