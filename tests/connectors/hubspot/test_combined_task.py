"""A combined task (``tasks.combine``) through hubspot-api-client against the HubSpot sandbox: created,
updated in place and closed, read back from HubSpot between the steps, never written twice."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta

import pytest
from crm_sandbox.faults import FaultConfig
from crm_sandbox.hubspot import HubSpotSandbox, RateLimitConfig, running_hubspot_sandbox
from hubspot import HubSpot

from connectors.base import OutcomeStatus
from connectors.checklist import parse_items
from connectors.hubspot import HubSpotOptions, build_hubspot_connector
from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.mapping import parse_task_key
from policies.model import AutoTask, CloseReason, CloseTask, CreateTask, Deal, UpdateTask
from tests.clocks import FakeTime
from tests.connectors.combined_scenario import complete, decide, seen_with_needs
from tests.connectors.hubspot.test_on_sandbox import NOW

BODY = ["hs_task_body", "hs_task_status", "hs_task_subject", "hs_task_type", "hs_timestamp"]


@pytest.fixture
def portal() -> Iterator[HubSpotSandbox]:
    with running_hubspot_sandbox(seed=11, deals=40, rate_limits=RateLimitConfig(enabled=False)) as hs:
        yield hs


def _connector(hs: HubSpotSandbox) -> HubSpotConnector:
    os.environ["COMBINED_HUBSPOT_TOKEN"] = hs.access_token
    settings = HubSpotOptions.model_validate(
        {"host": hs.base_url, "access_token_env": "COMBINED_HUBSPOT_TOKEN", "activity_lookback_days": 3650}
    )
    return build_hubspot_connector(settings, **FakeTime().clocks())


def _pull(hs: HubSpotSandbox, deal_id: str) -> Deal:
    """The deal as a fresh connector (a restarted worker) reads it from HubSpot."""
    connector = _connector(hs)
    directory = connector.read_directory()
    return next(d for b in connector.pull_changes(directory, None) for d in b.deals if d.id == deal_id)


def _our_tasks(hs: HubSpotSandbox, deal_id: str) -> list[dict[str, str]]:
    sdk = HubSpot(access_token=hs.access_token, host=hs.base_url)
    links = sdk.crm.associations.v4.basic_api.get_page("deals", deal_id, "tasks", limit=500)
    tasks = [
        sdk.crm.objects.tasks.basic_api.get_by_id(str(r.to_object_id), properties=BODY).properties
        for r in links.results
    ]
    return [t for t in tasks if parse_task_key(t.get("hs_task_body"))]


def _only_task(deal: Deal) -> AutoTask:
    (task,) = deal.auto_tasks
    return task


def test_combined_task_is_created_updated_in_place_and_closed_without_duplicates(portal: HubSpotSandbox):
    """One task with three items; the next step is filled in: the same task, one item ticked; the
    customer replies and a decision maker joins: closed. Reruns (a worker that crashed after writing)
    write nothing new, and a pull reads every state back."""
    pulled = _open_deals(portal)[0]
    deal_id = pulled.id
    now = NOW

    (create,) = decide(seen_with_needs(pulled, now), now)
    assert isinstance(create, CreateTask)
    assert len(create.items) == 3
    (created,) = _connector(portal).apply([create])
    assert created.status is OutcomeStatus.APPLIED
    task_id = created.crm_ids[0]
    (again,) = _connector(portal).apply([create])  # crashed before the ledger knew: found by its key
    assert (again.status, again.crm_ids) == (OutcomeStatus.ALREADY_APPLIED, (task_id,))
    (stored,) = _our_tasks(portal, deal_id)
    body = stored["hs_task_body"]
    assert body.startswith("<p>One conversation with ")
    assert "<ul><li>&#9744; <strong>Follow up with" in body
    assert parse_task_key(body) == (create.key, "conversation")
    assert stored["hs_task_type"] == "CALL"
    task = _only_task(_pull(portal, deal_id))
    assert task.id == task_id
    assert [(i.rule_id, i.key, i.closed) for i in task.items] == [
        (c.item.rule_id, c.item.key, None) for c in create.items
    ]

    later = now + timedelta(hours=2)
    pulled = _pull(portal, deal_id)
    (update,) = decide(seen_with_needs(pulled, later, step=complete(now)), later)
    assert isinstance(update, UpdateTask)
    assert update.task_id == task_id
    assert _connector(portal).apply([update])[0].status is OutcomeStatus.APPLIED
    assert _connector(portal).apply([update])[0].status is OutcomeStatus.ALREADY_APPLIED
    task = _only_task(_pull(portal, deal_id))
    assert task.is_open
    assert {i.rule_id: i.closed for i in task.items} == {
        "agreed_interval": None,
        "next_step": CloseReason.SETTLED,
        "decision_maker": None,
    }
    (stored,) = _our_tasks(portal, deal_id)
    assert "&#9745; <s>Agree the next step" in stored["hs_task_body"]
    assert decide(seen_with_needs(_pull(portal, deal_id), later, step=complete(now)), later) == ()

    last = later + timedelta(days=1)
    pulled = _pull(portal, deal_id)
    (close,) = decide(seen_with_needs(pulled, last, step=complete(now), settled=True), last)
    assert isinstance(close, CloseTask)
    assert close.task_id == task_id
    assert _connector(portal).apply([close])[0].status is OutcomeStatus.APPLIED
    assert _connector(portal).apply([close])[0].status is OutcomeStatus.ALREADY_APPLIED
    task = _only_task(_pull(portal, deal_id))
    assert not task.is_open
    assert all(i.closed is not None for i in task.items)
    (stored,) = _our_tasks(portal, deal_id)
    assert stored["hs_task_status"] == "COMPLETED"
    assert "Closed by crm-followup" in stored["hs_task_body"]
    assert len(parse_items(stored["hs_task_body"])) == 3
    assert decide(seen_with_needs(_pull(portal, deal_id), last, step=complete(now), settled=True), last) == ()


def test_dropped_connections_while_creating_combined_tasks_write_each_once(portal: HubSpotSandbox):
    """With responses lost after HubSpot wrote, the connector looks before sending again: one task each."""
    targets = _open_deals(portal)[:12]
    creates = [a for d in targets for a in decide(seen_with_needs(d, NOW), NOW)]
    assert all(isinstance(a, CreateTask) and len(a.items) == 3 for a in creates)
    portal.control.set_faults(FaultConfig(drop_rate=0.3, error_rate=0.1, seed=8))
    connector = _connector(portal)
    outcomes = connector.apply(creates)
    portal.control.set_faults(None)
    assert {o.status for o in outcomes} <= {OutcomeStatus.APPLIED, OutcomeStatus.ALREADY_APPLIED}
    for deal in targets:
        (stored,) = _our_tasks(portal, deal.id)
        assert len(parse_items(stored["hs_task_body"])) == 3


def _open_deals(hs: HubSpotSandbox) -> list[Deal]:
    connector = _connector(hs)
    deals = [d for b in connector.pull_changes(connector.read_directory(), None) for d in b.deals]
    return sorted((d for d in deals if not d.is_closed and d.contacts), key=lambda d: int(d.id))
