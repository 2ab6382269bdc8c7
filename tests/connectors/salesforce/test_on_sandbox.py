"""The Salesforce connector against the HTTPS sandbox through the real simple-salesforce: what only
Salesforce has (field mapping of writes, campaign members, JWT session renewal, the org's daily budget).
What every connector does is tested once for all of them in tests/contract/."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from crm_sandbox.salesforce import SalesforceSandbox, running_salesforce_sandbox

from connectors.base import ChangeBatch, OutcomeStatus
from connectors.errors import BudgetExhausted
from policies.model import (
    ChangeStage,
    CloseReason,
    CloseTask,
    CreateTask,
    Deal,
    EnrolInNurture,
    Explanation,
    ReactivateFromNurture,
    SetDealFields,
    TaskType,
    UpdateTask,
    make_key,
)
from tests.connectors.salesforce.sandbox_helpers import (
    NOW,
    close_all,
    connector,
    count,
    deals_by_id,
    ensure_campaign,
    jwt_auth,
    options,
    plain_client,
    pull_all,
)
from tests.sobjects import sobject

WHY = Explanation("test", ())
CAMPAIGN = "Nurture - contract"


@pytest.fixture(scope="module")
def box() -> Iterator[SalesforceSandbox]:
    with running_salesforce_sandbox(seed=11, deals=120, now=NOW) as running:
        running.control.snapshot("pristine")
        yield running


@pytest.fixture
def sandbox(box: SalesforceSandbox) -> Iterator[SalesforceSandbox]:
    box.control.restore("pristine")
    box.control.set_faults(None)
    box.org.sf_faults.configure(0.0, 0)
    box.org.usage.set_used(0, box.org.clock.now())
    box.org.usage.limit = 100_000
    yield box
    close_all()
    box.control.set_faults(None)
    box.org.sf_faults.configure(0.0, 0)


def open_deal_with_contact(deals: dict[str, Deal]) -> Deal:
    return next(d for d in sorted(deals.values(), key=lambda d: d.id) if not d.is_closed and d.contacts)


def test_write_back_of_every_action_kind(sandbox: SalesforceSandbox, tmp_path: Path) -> None:
    """Each action kind is written and visible through simple-salesforce afterwards."""
    sf = plain_client(sandbox)
    ensure_campaign(sf, CAMPAIGN)
    conn = connector(options(sandbox, tmp_path / "t"))
    directory = conn.read_directory()
    assert any(o.time_zone for o in directory.owners.values())  # User.TimeZoneSidKey, for due dates
    deals = deals_by_id(pull_all(conn, directory, None))
    deal = open_deal_with_contact(deals)
    contact = deal.contacts[0].id
    create = CreateTask(
        key=make_key("contract", deal.id),
        deal_id=deal.id,
        rule_id="contract-rule",
        explanation=WHY,
        owner_id=deal.owner_id,
        subject="Call back",
        body="As agreed.",
        due_at=NOW + timedelta(days=2),
        task_type=TaskType.CALL,
        contact_id=contact,
    )
    (created,) = conn.apply([create])
    assert created.status is OutcomeStatus.APPLIED
    task_id = created.crm_ids[0]
    row = sf.query(
        f"SELECT Followup_Key__c, Followup_Rule__c, WhatId, WhoId, Type FROM Task WHERE Id = '{task_id}'"
    )
    assert row["records"][0]["Followup_Key__c"] == create.key
    assert (row["records"][0]["WhatId"], row["records"][0]["WhoId"]) == (deal.id, contact)
    outcomes = conn.apply(
        [
            UpdateTask(
                key="u1",
                deal_id=deal.id,
                rule_id="r",
                explanation=WHY,
                task_id=task_id,
                task_key=create.key,
                subject="Call back (updated)",
            ),
            ChangeStage(
                key="s1",
                deal_id=deal.id,
                rule_id="r",
                explanation=WHY,
                pipeline_id="default",
                stage_id="Closed Lost",
                close_reason="No budget",
                expected_modified_at=deal.modified_at,
            ),
            SetDealFields(
                key="f1",
                deal_id=deal.id,
                rule_id="r",
                explanation=WHY,
                fields={"followup_state": "stopped"},
                expected_modified_at=deal.modified_at,
            ),
            EnrolInNurture(
                key="n1",
                deal_id=deal.id,
                rule_id="r",
                explanation=WHY,
                contact_ids=(contact,),
                nurture=CAMPAIGN,
            ),
        ]
    )
    assert [o.status for o in outcomes] == [OutcomeStatus.APPLIED] * 4
    opp = sobject(sf, "Opportunity").get(deal.id)
    assert (opp["StageName"], opp["Followup_State__c"], opp["Followup_Close_Reason__c"]) == (
        "Closed Lost",
        "stopped",
        "No budget",
    )
    member_query = f"SELECT Id, Status FROM CampaignMember WHERE ContactId = '{contact}'"
    assert sf.query(member_query)["records"][0]["Status"] == "Nurture"
    outcomes = conn.apply(
        [
            CloseTask(
                key="c1",
                deal_id=deal.id,
                rule_id="r",
                explanation=WHY,
                task_id=task_id,
                task_key=create.key,
                reason=CloseReason.DEAL_STOPPED,
            ),
            ReactivateFromNurture(
                key="r1",
                deal_id=deal.id,
                rule_id="r",
                explanation=WHY,
                contact_ids=(contact,),
                nurture=CAMPAIGN,
            ),
        ]
    )
    assert [o.status for o in outcomes] == [OutcomeStatus.APPLIED] * 2
    assert sobject(sf, "Task").get(task_id)["Status"] == "Completed"
    assert sf.query(member_query)["totalSize"] == 0


def test_existing_campaign_member_and_rerun_write_nothing(sandbox: SalesforceSandbox, tmp_path: Path) -> None:
    """A member added elsewhere is ALREADY_APPLIED, and a re-run of applied tasks makes no write call."""
    sf = plain_client(sandbox)
    campaign_id = ensure_campaign(sf, CAMPAIGN)
    conn = connector(options(sandbox, tmp_path / "t"))
    directory = conn.read_directory()
    deal = open_deal_with_contact(deals_by_id(pull_all(conn, directory, None)))
    contact = deal.contacts[0].id
    sobject(sf, "CampaignMember").create(
        {"CampaignId": campaign_id, "ContactId": contact, "Status": "Nurture"}
    )
    create = CreateTask(
        key=make_key("rerun", deal.id),
        deal_id=deal.id,
        rule_id="r",
        explanation=WHY,
        owner_id=deal.owner_id,
        subject="S",
        body="B",
        due_at=NOW + timedelta(days=1),
    )
    enrol = EnrolInNurture(
        key="n1", deal_id=deal.id, rule_id="r", explanation=WHY, contact_ids=(contact,), nurture=CAMPAIGN
    )
    first = conn.apply([create, enrol])
    assert [o.status for o in first] == [OutcomeStatus.APPLIED, OutcomeStatus.ALREADY_APPLIED]
    writes_before = conn.usage().calls_by_endpoint.get("composite/sobjects", 0)
    applied = conn.find_applied([create.key])
    remaining = [a for a in (create, enrol) if a.key not in applied]
    second = conn.apply(remaining)
    assert applied[create.key] == first[0].crm_ids
    assert [o.status for o in second] == [OutcomeStatus.ALREADY_APPLIED]
    assert conn.usage().calls_by_endpoint.get("composite/sobjects", 0) == writes_before
    assert count(sf, f"SELECT Id FROM Task WHERE Followup_Key__c = '{create.key}'") == 1


def test_expired_token_mid_cycle_renews_and_finishes(sandbox: SalesforceSandbox, tmp_path: Path) -> None:
    """Sessions revoked between two pages of a pull are renewed with a new JWT; the pull completes."""
    conn = connector(
        options(sandbox, tmp_path / "t", instance_url=None, auth=jwt_auth(sandbox), query_batch_size=200)
    )
    directory = conn.read_directory()
    observe = conn.client.session.observer
    assert observe is not None
    seen: list[int] = []

    def revoke_after_the_first_page(response: requests.Response) -> None:
        observe(response)
        seen.append(response.status_code)
        if len(seen) == 1:
            sandbox.org.tokens.revoke_all()  # every session dies between two pages

    conn.client.session.observer = revoke_after_the_first_page
    batches = pull_all(conn, directory, None)
    assert len(deals_by_id(batches)) == count(plain_client(sandbox), "SELECT Id FROM Opportunity")
    assert 401 in seen
    assert conn.client.renewals == 1


def test_nearly_spent_budget_stops_cleanly_and_finishes_next_cycle(
    sandbox: SalesforceSandbox, tmp_path: Path
) -> None:
    """With the org's budget nearly spent the pull stops with BudgetExhausted and resumes from its cursor."""
    small = {"query_batch_size": 200, "queries_per_call": 2}  # 2 pages a call: enough calls to stop midway
    probe = connector(options(sandbox, tmp_path / "p", **small))
    pull_all(probe, probe.read_directory(), None)
    calls = probe.usage().calls
    assert calls >= 6  # enough calls for the stop to fall in the middle
    sandbox.org.usage.limit = 1_000
    sandbox.org.usage.set_used(900 - calls // 2 - 1, sandbox.org.clock.now())  # stop at 90%: half a pull left
    conn = connector(options(sandbox, tmp_path / "t", **small))
    stored: list[ChangeBatch] = []
    batches = conn.pull_changes(conn.read_directory(), None)
    with pytest.raises(BudgetExhausted):
        stored.extend(batches)
    assert stored == []  # a full pull is stored whole or not at all: nothing half-done to clean up
    assert conn.usage().calls < calls  # it stopped before the end, without a failing call
    sandbox.org.usage.set_used(0, sandbox.org.clock.now())  # a day later
    later = connector(options(sandbox, tmp_path / "t2", **small))
    rest = pull_all(later, later.read_directory(), None)
    assert len(deals_by_id(rest)) == count(plain_client(sandbox), "SELECT Id FROM Opportunity")
    assert "full_at" in rest[-1].cursor


def test_a_stage_the_org_does_not_have_fails_that_action_alone(
    sandbox: SalesforceSandbox, tmp_path: Path
) -> None:
    """StageName is a restricted picklist: a stage change to a value the org lacks (renamed or removed
    since the policy was checked) is that action's FAILED outcome with Salesforce's code, on its
    opportunity; the other actions of the apply are written, and nothing raises."""
    conn = connector(options(sandbox, tmp_path / "t"))
    directory = conn.read_directory()
    deals = sorted(deals_by_id(pull_all(conn, directory, None)).values(), key=lambda d: d.id)
    stale, other = [d for d in deals if not d.is_closed][:2]
    renamed = ChangeStage(
        key="s-gone",
        deal_id=stale.id,
        rule_id="r",
        explanation=WHY,
        pipeline_id=stale.pipeline_id,
        stage_id="Stalled",
        expected_modified_at=stale.modified_at,
    )
    task = CreateTask(
        key=make_key("beside", other.id),
        deal_id=other.id,
        rule_id="r",
        explanation=WHY,
        owner_id=other.owner_id,
        subject="S",
        body="B",
        due_at=NOW + timedelta(days=1),
    )

    failed, written = conn.apply([renamed, task])

    assert failed.status is OutcomeStatus.FAILED
    assert failed.message is not None
    assert "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" in failed.message
    assert failed.crm_ids == (stale.id,)
    assert written.status is OutcomeStatus.APPLIED
    assert sobject(plain_client(sandbox), "Opportunity").get(stale.id)["StageName"] == stale.stage.id
