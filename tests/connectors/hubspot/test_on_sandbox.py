"""The HubSpot connector against the HubSpot sandbox, through the real SDK and real HTTP: what only HubSpot
has (association labels as roles, the 10,000-result search cap, association paging, property mapping and
the calls each step costs). What every connector does is tested once for all of them in tests/contract/.

Each test starts its own small sandbox portal (seeded from ``crm_sandbox.dataset``), so tests never share
state. Changes are made with the unmodified ``hubspot-api-client``, as a HubSpot user's tools would make
them. Rate limits are off in the sandbox and the connector's ``sleep`` is a no-op: nothing here waits.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from crm_sandbox.dataset import generate
from crm_sandbox.hubspot import HubSpotSandbox, RateLimitConfig, running_hubspot_sandbox
from hubspot import HubSpot
from pydantic import ValidationError

from connectors.base import OutcomeStatus
from connectors.errors import FixConfiguration
from connectors.hubspot import HubSpotOptions, build_hubspot_connector
from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.mapping import parse_task_key
from policies.model import (
    Action,
    ChangeStage,
    CloseReason,
    CloseTask,
    ContactRole,
    CreateTask,
    Deal,
    EnrolInNurture,
    Explanation,
    Priority,
    ReactivateFromNurture,
    SetDealFields,
    TaskType,
    UpdateTask,
    make_key,
)
from tests.clocks import FakeTime

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
ROLE_BY_DATASET = {r.value: r for r in ContactRole}
TYPE_BY_KIND = {"call": "calls", "email": "emails", "meeting": "meetings", "note": "notes", "task": "tasks"}
NO_LIMITS = RateLimitConfig(enabled=False)


def _connector(hs: HubSpotSandbox, **options: object) -> HubSpotConnector:
    os.environ["CONTRACT_HUBSPOT_TOKEN"] = hs.access_token
    settings = HubSpotOptions.model_validate(
        {"host": hs.base_url, "access_token_env": "CONTRACT_HUBSPOT_TOKEN", "activity_lookback_days": 3650}
        | options
    )
    return build_hubspot_connector(settings, **FakeTime().clocks())


def _sdk(hs: HubSpotSandbox) -> HubSpot:
    return HubSpot(access_token=hs.access_token, host=hs.base_url)


def _full(connector: HubSpotConnector):
    directory = connector.read_directory()
    batches = list(connector.pull_changes(directory, None))
    deals = {d.id: d for b in batches for d in b.deals}
    return directory, batches, deals


@pytest.fixture
def small() -> Iterator[HubSpotSandbox]:
    with running_hubspot_sandbox(seed=11, deals=120, rate_limits=NO_LIMITS) as hs:
        yield hs


def test_full_pull_returns_every_deal_with_roles_and_activities():
    """A full pull yields every seeded deal with its contacts' roles and its own engagements."""
    dataset = generate(5, 150, NOW)
    with running_hubspot_sandbox(dataset=dataset, rate_limits=NO_LIMITS) as hs:
        connector = _connector(hs, deals_per_batch=60)
        directory, batches, deals = _full(connector)
        resumed = list(_connector(hs, deals_per_batch=60).pull_changes(directory, batches[0].cursor))
    first_batch = {d.id for d in batches[0].deals}
    assert {d.id for b in resumed for d in b.deals} == set(deals) - first_batch  # a stopped full pull resumes
    assert set(deals) == {str(d.id) for d in dataset.deals}
    assert len(batches) == 3
    assert batches[-1].cursor.get("hi")
    assert all("full_from_id" in b.cursor for b in batches[:-1])
    for gen in dataset.deals:
        deal = deals[str(gen.id)]
        assert deal.stage.id == gen.stage_id
        roles = {c.id: c.roles for c in deal.contacts}
        expected = {
            str(link.contact_id): ({ROLE_BY_DATASET[link.role]} if link.role else set())
            for link in gen.contacts
        }
        assert roles == expected
    activity_ids = {a.id for d in deals.values() for a in d.activities}
    on_deals = {
        f"{TYPE_BY_KIND[a.kind.value]}:{a.id}"
        for a in dataset.activities
        if a.kind.value != "task" or a.outcome == "completed"
    }
    assert on_deals <= activity_ids
    usage = connector.usage().calls_by_endpoint
    assert usage["deals.search"] == 1
    assert usage["associations.deals.contacts"] == 3  # one per batch of 60 deals


def _find_label_type(sdk: HubSpot, label: str) -> int:
    result = sdk.crm.associations.v4.schema.definitions_api.get_all("deals", "contacts")
    return int(next(r.type_id for r in result.results if r.label == label))


def test_incremental_pull_sees_activity_stage_role_and_archive(small: HubSpotSandbox):
    """After SDK changes, an incremental pull returns exactly the touched deals and the archived one."""
    connector = _connector(small)
    directory, batches, deals = _full(connector)
    cursor = batches[-1].cursor
    ids = sorted(deals, key=int)
    activity_deal, stage_deal, role_deal, archived_deal = ids[3], ids[10], ids[20], ids[30]
    sdk = _sdk(small)
    from hubspot.crm.objects.calls import SimplePublicObjectInputForCreate as CallInput

    call = sdk.crm.objects.calls.basic_api.create(
        CallInput(
            properties={
                "hs_timestamp": datetime.now(UTC).isoformat(),
                "hs_call_direction": "INBOUND",
                "hs_call_disposition": "f240bbac-87c9-4f6e-bf70-924b57d47db7",
            },
            associations=[
                {
                    "to": {"id": activity_deal},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 206}],
                }
            ],
        )
    )
    pipeline = directory.pipelines[deals[stage_deal].pipeline_id]
    open_stage = next(s.id for s in pipeline.stages if s.id != deals[stage_deal].stage.id and not s.is_closed)
    sdk.crm.deals.basic_api.update(stage_deal, {"properties": {"dealstage": open_stage}})
    from hubspot.crm.contacts import SimplePublicObjectInputForCreate as ContactInput

    contact = sdk.crm.contacts.basic_api.create(
        ContactInput(properties={"email": "new.buyer@example.com", "firstname": "New"})
    )
    sdk.crm.associations.v4.basic_api.create(
        "deals",
        role_deal,
        "contacts",
        contact.id,
        [
            {
                "associationCategory": "USER_DEFINED",
                "associationTypeId": _find_label_type(sdk, "Decision maker"),
            }
        ],
    )
    sdk.crm.deals.basic_api.archive(archived_deal)
    before = connector.usage().calls

    changed = list(connector.pull_changes(directory, cursor))

    got = {d.id: d for b in changed for d in b.deals}
    removed = {r for b in changed for r in b.removed_deal_ids}
    assert {activity_deal, stage_deal, role_deal} <= set(got)
    assert archived_deal in removed
    assert archived_deal not in got
    assert f"calls:{call.id}" in {a.id for a in got[activity_deal].activities}
    assert got[stage_deal].stage.id == open_stage
    new_contact = next(c for c in got[role_deal].contacts if c.id == str(contact.id))
    assert new_contact.roles == frozenset({ContactRole.DECISION_MAKER})
    assert int(changed[-1].cursor["hi"]) > int(cursor["hi"])
    spent = connector.usage().calls - before
    assert spent < 45, connector.usage().calls_by_endpoint  # grows with the 3 changed deals, not the portal


@pytest.mark.slow
def test_more_than_ten_thousand_deals_changed_in_one_millisecond():
    """10,050 deals modified in the same millisecond come back once each, past the 10,000 search cap."""
    # No engagements or contacts: the test is about the search window, and the aggregates of 10,050 deals
    # would only make it slow.
    seeded = generate(3, 10_050, NOW)
    dataset = replace(seeded, activities=(), deals=tuple(replace(d, contacts=()) for d in seeded.deals))
    with running_hubspot_sandbox(dataset=dataset, rate_limits=NO_LIMITS) as hs:
        connector = _connector(hs)
        directory = connector.read_directory()
        frozen = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=60)
        hs.control.set_clock(frozen)
        sdk = _sdk(hs)
        ids = [str(i) for i in range(1, 10_051)]
        for start in range(0, len(ids), 100):
            inputs = [
                {"id": i, "properties": {"followup_reason": "bulk import"}} for i in ids[start : start + 100]
            ]
            sdk.crm.deals.batch_api.update({"inputs": inputs})
        hs.control.set_clock(None)
        cursor = {
            "hi": str(int(frozen.timestamp() * 1000) - 1),
            "full_at": str(int(frozen.timestamp() * 1000)),
        }
        seen: list[str] = []
        for batch in connector.pull_changes(directory, cursor):
            seen.extend(d.id for d in batch.deals)
        usage = connector.usage().calls_by_endpoint
    assert sorted(seen, key=int) == ids
    assert len(seen) == len(set(seen))
    assert usage["deals.search"] <= 53  # ceil(10,050 / 200) pages: the restart at the cap costs none


def _actions(deal: Deal, other: Deal, pipelines) -> list[Action]:
    explanation = Explanation("no reply for 14 days")
    contact = deal.contacts[0].id if deal.contacts else None
    return [
        CreateTask(
            key=make_key("t1", deal.id),
            deal_id=deal.id,
            rule_id="call-back",
            explanation=explanation,
            owner_id=deal.owner_id,
            subject="Call back",
            body="Call the buyer back.",
            due_at=NOW + timedelta(days=2, hours=9),
            task_type=TaskType.CALL,
            priority=Priority.HIGH,
            contact_id=contact,
        ),
        ChangeStage(
            key=make_key("stage", other.id),
            deal_id=other.id,
            rule_id="stale",
            explanation=explanation,
            pipeline_id=other.pipeline_id,
            stage_id=next(s.id for s in pipelines[other.pipeline_id].stages if s.is_closed and not s.is_won),
            close_reason="no response",
            expected_modified_at=other.modified_at,
        ),
        SetDealFields(
            key=make_key("fields", deal.id),
            deal_id=deal.id,
            rule_id="nurture",
            explanation=explanation,
            fields={"followup_state": "nurture", "followup_reason": "not now"},
            expected_modified_at=deal.modified_at,
        ),
        EnrolInNurture(
            key=make_key("enrol", deal.id),
            deal_id=deal.id,
            rule_id="nurture",
            explanation=explanation,
            contact_ids=tuple(c.id for c in deal.contacts),
            nurture="Follow-up nurture",
        ),
    ]


def test_write_back_of_every_action_kind_and_a_rerun_that_writes_nothing(small: HubSpotSandbox):
    """Every action kind lands in HubSpot; running the same actions again writes nothing new."""
    connector = _connector(small)
    directory, batches, deals = _full(connector)
    open_deals = [
        d for d in sorted(deals.values(), key=lambda d: int(d.id)) if not d.is_closed and d.contacts
    ]
    deal, other = open_deals[0], open_deals[1]
    first = _actions(deal, other, directory.pipelines)

    outcomes = connector.apply(first)
    assert [o.status for o in outcomes] == [OutcomeStatus.APPLIED] * 4, outcomes
    task_id = outcomes[0].crm_ids[0]

    sdk = _sdk(small)
    task = sdk.crm.objects.tasks.basic_api.get_by_id(
        task_id, properties=["hs_task_body", "hs_task_type", "hs_task_priority"]
    )
    assert parse_task_key(task.properties["hs_task_body"]) == (first[0].key, "call-back")
    assert task.properties["hs_task_type"] == "CALL"
    links = sdk.crm.associations.v4.basic_api.get_page("tasks", task_id, "deals")
    assert [str(r.to_object_id) for r in links.results] == [deal.id]
    moved = sdk.crm.deals.basic_api.get_by_id(other.id, properties=["dealstage", "closed_lost_reason"])
    lost = first[1]
    assert isinstance(lost, ChangeStage)
    assert moved.properties["dealstage"] == lost.stage_id
    assert moved.properties["closed_lost_reason"] == "no response"
    fields = sdk.crm.deals.basic_api.get_by_id(deal.id, properties=["followup_state"])
    assert fields.properties["followup_state"] == "nurture"
    nurture = sdk.crm.lists.lists_api.get_by_name("Follow-up nurture", "0-1")
    members = sdk.crm.lists.memberships_api.get_page(nurture.list.list_id)
    assert {m.record_id for m in members.results} == {c.id for c in deal.contacts}

    # Update and close the task, reactivate from nurture.
    follow_up: list[Action] = [
        UpdateTask(
            key=make_key("upd", task_id),
            deal_id=deal.id,
            rule_id="call-back",
            explanation=Explanation("moved"),
            task_id=task_id,
            task_key=first[0].key,
            due_at=NOW + timedelta(days=5, hours=9),
        ),
        CloseTask(
            key=make_key("close", task_id),
            deal_id=deal.id,
            rule_id="call-back",
            explanation=Explanation("done"),
            task_id=task_id,
            task_key=first[0].key,
            reason=CloseReason.SUPERSEDED,
        ),
        ReactivateFromNurture(
            key=make_key("react", deal.id),
            deal_id=deal.id,
            rule_id="nurture",
            explanation=Explanation("ready"),
            contact_ids=tuple(c.id for c in deal.contacts),
            nurture="Follow-up nurture",
        ),
    ]
    assert [o.status for o in connector.apply(follow_up)] == [OutcomeStatus.APPLIED] * 3
    closed = sdk.crm.objects.tasks.basic_api.get_by_id(task_id, properties=["hs_task_status", "hs_task_body"])
    assert closed.properties["hs_task_status"] == "COMPLETED"
    assert closed.properties["hs_task_body"].splitlines()[-1].startswith(f"crm-followup key: {first[0].key}")
    assert sdk.crm.lists.memberships_api.get_page(nurture.list.list_id).results == []

    # The same connector knows every key; a fresh one (a restarted worker) finds them in HubSpot.
    assert set(connector.find_applied([a.key for a in first + follow_up])) == {
        a.key for a in first + follow_up
    }
    fresh = _connector(small)
    rerun = fresh.apply(first[:3] + follow_up[1:2])
    assert [o.status for o in rerun] == [OutcomeStatus.ALREADY_APPLIED] * 4, rerun
    assert rerun[0].crm_ids == (task_id,)
    writes = {k: v for k, v in fresh.usage().calls_by_endpoint.items() if "create" in k or "update" in k}
    assert writes == {}

    # A restarted worker that only pulls (the crash came before its ledger update) finds the task by key.
    restarted = _connector(small)
    list(restarted.pull_changes(directory, batches[-1].cursor))
    assert restarted.find_applied([first[0].key]) == {first[0].key: (task_id,)}


def test_a_deal_update_hubspot_refuses_fails_alone(small: HubSpotSandbox):
    """HubSpot refuses a whole batch update for one bad deal (400): the deals are written one by one, so the
    refused deal's action fails and the others' are applied."""
    connector = _connector(small)
    _, _, deals = _full(connector)
    good, bad = [d for d in sorted(deals.values(), key=lambda d: int(d.id)) if not d.is_closed][:2]
    actions = [
        SetDealFields(
            key=make_key("fields", deal.id),
            deal_id=deal.id,
            rule_id="fields",
            explanation=Explanation("test"),
            fields=fields,
        )
        for deal, fields in ((good, {"followup_reason": "asked to wait"}), (bad, {"amount": "lots"}))
    ]

    outcomes = {o.key: o for o in connector.apply(actions)}

    assert outcomes[actions[0].key].status == OutcomeStatus.APPLIED
    assert outcomes[actions[0].key].crm_ids == (good.id,)
    assert outcomes[actions[1].key].status == OutcomeStatus.FAILED
    assert outcomes[actions[1].key].message == f"HubSpot rejected the update of deal {bad.id}"
    written = _sdk(small).crm.deals.basic_api.get_by_id(good.id, properties=["followup_reason"])
    assert written.properties["followup_reason"] == "asked to wait"
    assert connector.usage().calls_by_endpoint["deals.batch_update"] == 3  # the batch, then one each


def test_association_paging_gives_the_same_aggregates():
    """When HubSpot pages a deal's associations, the per-id cursors are followed to the same aggregates."""
    dataset = generate(13, 40, NOW)
    shapes = []
    for page_size in (500, 2):
        with running_hubspot_sandbox(
            dataset=dataset, rate_limits=NO_LIMITS, association_page_size=page_size
        ) as hs:
            connector = _connector(hs)
            _directory, _batches, deals = _full(connector)
            shapes.append(
                {
                    d.id: ({c.id: c.roles for c in d.contacts}, {a.id for a in d.activities})
                    for d in deals.values()
                }
            )
            calls = connector.usage().calls_by_endpoint["associations.deals.emails"]
    assert shapes[0] == shapes[1]
    assert calls > 1  # page size 2: the emails of 40 deals need several rounds


def test_a_mapped_property_missing_in_the_portal_is_fix_configuration(small: HubSpotSandbox):
    """A mapping that names a property the portal does not have stops the account, naming the property."""
    connector = _connector(
        small, deal_properties={"agreed_interval_days": "followup_interval_deleted_last_week"}
    )
    with pytest.raises(FixConfiguration, match="followup_interval_deleted_last_week") as caught:
        connector.read_directory()
    assert "hubspot.deal_properties.agreed_interval_days" in str(caught.value)
    assert connector.usage().calls_by_endpoint["properties.list"] == 1


def test_owner_time_zones_must_be_known_when_the_settings_load():
    """An owner zone zoneinfo does not know is a settings error naming the owner, not a failing cycle."""
    with pytest.raises(ValidationError, match=r"77: 'Mars/Base'"):
        HubSpotOptions.model_validate(
            {"access_token_env": "T", "owner_time_zones": {"77": "Mars/Base", "a@b.c": "Europe/Berlin"}}
        )
    ok = HubSpotOptions.model_validate({"access_token_env": "T", "owner_time_zones": {"77": "Asia/Tokyo"}})
    assert ok.owner_time_zones == {"77": "Asia/Tokyo"}
