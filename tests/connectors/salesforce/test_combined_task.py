"""A combined task (``tasks.combine``) through simple-salesforce against the Salesforce sandbox: created,
updated in place and closed, read back from Salesforce between the steps, never written twice."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from crm_sandbox.faults import FaultConfig
from crm_sandbox.salesforce import SalesforceSandbox, running_salesforce_sandbox

from connectors.base import OutcomeStatus
from connectors.checklist import parse_items
from connectors.salesforce import SalesforceConnector
from policies.model import AutoTask, CloseReason, CloseTask, CreateTask, Deal, UpdateTask
from tests.connectors.combined_scenario import complete, decide, seen_with_needs
from tests.connectors.salesforce.sandbox_helpers import (
    NOW,
    close_all,
    connector,
    deals_by_id,
    options,
    plain_client,
    pull_all,
)


@pytest.fixture
def org() -> Iterator[SalesforceSandbox]:
    with running_salesforce_sandbox(seed=11, deals=40, now=NOW) as running:
        yield running
    close_all()


class Worker:
    """A fresh connector for every step, as a worker restarted after a crash would have."""

    def __init__(self, box: SalesforceSandbox, folder: Path) -> None:
        self.box = box
        self.folder = folder
        self.made = 0

    def connector(self) -> SalesforceConnector:
        self.made += 1
        return connector(options(self.box, self.folder / f"token-{self.made}"))

    def pull(self, deal_id: str) -> Deal:
        conn = self.connector()
        return deals_by_id(pull_all(conn, conn.read_directory(), None))[deal_id]

    def open_deals(self) -> list[Deal]:
        conn = self.connector()
        deals = deals_by_id(pull_all(conn, conn.read_directory(), None)).values()
        return sorted((d for d in deals if not d.is_closed and d.contacts), key=lambda d: d.id)


def _rows(box: SalesforceSandbox, deal_id: str) -> list[dict[str, Any]]:
    sf = plain_client(box)
    soql = (
        "SELECT Id, Subject, Description, Status, IsClosed, Type, Followup_Key__c, Followup_Rule__c "
        f"FROM Task WHERE WhatId = '{deal_id}' AND Followup_Key__c != null"
    )
    return list(sf.query(soql)["records"])


def _only_task(deal: Deal) -> AutoTask:
    (task,) = deal.auto_tasks
    return task


def test_combined_task_is_created_updated_in_place_and_closed_without_duplicates(
    org: SalesforceSandbox, tmp_path: Path
) -> None:
    """One Task with three items; the next step is filled in: the same Task, one item ticked; the customer
    replies and a decision maker joins: closed. Recovery finds the Task by key and reruns of the update
    and the close write no second Task; a pull reads every state back."""
    worker = Worker(org, tmp_path)
    pulled = worker.open_deals()[0]
    deal_id = pulled.id
    now = NOW

    (create,) = decide(seen_with_needs(pulled, now), now)
    assert isinstance(create, CreateTask)
    assert len(create.items) == 3
    (created,) = worker.connector().apply([create])
    assert created.status is OutcomeStatus.APPLIED
    task_id = created.crm_ids[0]
    # A worker that crashed before its ledger knew finds the Task by its key (recovery) and, for the update
    # and the close below, simply writes them again: the same values, still one Task.
    assert worker.connector().find_applied([create.key]) == {create.key: (task_id,)}
    (row,) = _rows(org, deal_id)
    assert row["Id"] == task_id
    assert (row["Followup_Key__c"], row["Followup_Rule__c"], row["Type"]) == (
        create.key,
        "conversation",
        "Call",
    )
    assert row["Description"].startswith("One conversation with ")
    assert "\n[ ] Follow up with" in row["Description"]
    task = _only_task(worker.pull(deal_id))
    assert task.id == task_id
    assert [(i.rule_id, i.key, i.closed) for i in task.items] == [
        (c.item.rule_id, c.item.key, None) for c in create.items
    ]

    later = now + timedelta(hours=2)
    (update,) = decide(seen_with_needs(worker.pull(deal_id), later, step=complete(now)), later)
    assert isinstance(update, UpdateTask)
    assert update.task_id == task_id
    assert worker.connector().apply([update])[0].status is OutcomeStatus.APPLIED
    assert worker.connector().apply([update])[0].status is OutcomeStatus.APPLIED  # a rerun: same values
    task = _only_task(worker.pull(deal_id))
    assert task.is_open
    assert {i.rule_id: i.closed for i in task.items} == {
        "agreed_interval": None,
        "next_step": CloseReason.SETTLED,
        "decision_maker": None,
    }
    (row,) = _rows(org, deal_id)
    assert "\n[x] Agree the next step" in row["Description"]
    assert decide(seen_with_needs(worker.pull(deal_id), later, step=complete(now)), later) == ()

    last = later + timedelta(days=1)
    pulled = worker.pull(deal_id)
    (close,) = decide(seen_with_needs(pulled, last, step=complete(now), settled=True), last)
    assert isinstance(close, CloseTask)
    assert close.task_id == task_id
    assert worker.connector().apply([close])[0].status is OutcomeStatus.APPLIED
    assert worker.connector().apply([close])[0].status in (
        OutcomeStatus.APPLIED,
        OutcomeStatus.ALREADY_APPLIED,
    )
    task = _only_task(worker.pull(deal_id))
    assert not task.is_open
    assert all(i.closed is not None for i in task.items)
    (row,) = _rows(org, deal_id)
    assert row["IsClosed"]
    assert "Closed by crm-followup" in row["Description"]
    assert len(parse_items(row["Description"])) == 3
    settled = seen_with_needs(worker.pull(deal_id), last, step=complete(now), settled=True)
    assert decide(settled, last) == ()


def test_dropped_connections_while_creating_combined_tasks_write_each_once(
    org: SalesforceSandbox, tmp_path: Path
) -> None:
    """With responses lost after Salesforce wrote, the connector looks by key before sending again."""
    worker = Worker(org, tmp_path)
    targets = worker.open_deals()[:12]
    creates = [a for d in targets for a in decide(seen_with_needs(d, NOW), NOW)]
    assert all(isinstance(a, CreateTask) and len(a.items) == 3 for a in creates)
    org.control.set_faults(FaultConfig(drop_rate=0.3, error_rate=0.1, seed=8))
    outcomes = worker.connector().apply(creates)
    org.control.set_faults(None)
    assert {o.status for o in outcomes} <= {OutcomeStatus.APPLIED, OutcomeStatus.ALREADY_APPLIED}
    for deal in targets:
        (row,) = _rows(org, deal.id)
        assert len(parse_items(row["Description"])) == 3
