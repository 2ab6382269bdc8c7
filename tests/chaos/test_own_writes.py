"""Our own writes never count as someone else's change, on both CRMs, through ``followup run --once``.

Issue 10 item 6 and issue 15 item 2. Each test starts a sandbox CRM on real time (the worker in its own
process reads the system clock), writes a settings file with a small policy, and runs the ``followup``
command as an operator does; a "rep" changes the CRM in between through the official client. What the
worker did is read from its state store (the runs' counts and the ledger) and from the CRM itself.

* A stop and a nurture on deals with an open crm-followup task land in the cycle that decides them: the
  task close that comes with them does not make their stage or state change conflict (HubSpot moves a
  deal's ``hs_lastmodifieddate`` when a task on it changes; Salesforce its ``SystemModstamp``).
* A rerun with nothing changed by anyone else pulls no deal whose only change was ours: no more deals than
  a rerun after a cycle that wrote nothing (shadow mode), whatever the look-back overlap re-reads.
* A rep's change after our write is still pulled, and a conditional write made on the stamp we remember
  conflicts once a rep changed the deal, and goes through when nobody did.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pytest

import worker
from config.settings import read_settings_file
from connectors.base import OutcomeStatus
from policies.model import Deal, DealField, Explanation, SetDealFields
from store import StateStore
from store.ledger import LedgerEntry

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

FOLLOWUP = Path(sys.executable).parent / "followup"
ACCOUNT = "demo"
TOKEN_ENV = "CHAOS_OWN_WRITES_TOKEN"
NURTURE_LIST = "crm-followup nurture"

# Every open deal gets a cadence task in the first cycle; three unanswered touches stop a deal (closed
# lost, whatever its qualification); readiness "not now" sends it to nurture.
POLICY = f"""\
version: 1
calendar:
  time_zone: UTC
  working_hours: {{start: "00:00", end: "23:59", days: [mon, tue, wed, thu, fri, sat, sun]}}
stages:
  default: {{lost: closedlost}}
  enterprise: {{lost: enterpriselost}}
defaults:
  agreed_interval: {{default_cadence: 1d, default_channel: call}}
  next_step: {{enabled: false}}
  stop: {{max_unanswered_touches: 3, qualified_deals: close_lost}}
  nurture:
    {{enabled: true, list: "{NURTURE_LIST}", on_not_now: true, move_stage: false, move_stage_back: false}}
  qualification: {{enabled: false}}
  decision_maker: {{enabled: false}}
  task_expiry: null
budgets: {{max_new_tasks_per_owner_per_day: 1000, max_touches_per_contact_per_week: null}}
"""


class Crm(Protocol):
    """What a test does in the CRM, as a rep, and reads back from it."""

    def connector_section(self) -> str: ...

    def prepare(self, settings: Path) -> None: ...

    def log_unanswered_calls(self, deal: Deal, count: int) -> None: ...

    def set_not_now(self, deal: Deal) -> None: ...

    def edit_amount(self, deal: Deal, amount: float) -> None: ...

    def is_closed_lost(self, deal_id: str) -> bool: ...

    def followup_state(self, deal_id: str) -> str | None: ...

    def task_is_completed(self, task_id: str) -> bool: ...

    def in_nurture(self, contact_ids: tuple[str, ...]) -> bool: ...

    def create_task(self, deal: Deal, owner_id: str, kind: str) -> str: ...

    def task_text(self, task_id: str) -> str: ...


class HubSpotCrm:
    def __init__(self, sandbox: Any) -> None:
        from hubspot import HubSpot

        self.sandbox = sandbox
        self.api = HubSpot(access_token=sandbox.access_token, host=sandbox.base_url)

    def connector_section(self) -> str:
        return (
            "    hubspot:\n"
            f"      host: '{self.sandbox.base_url}'\n"
            f"      access_token_env: {TOKEN_ENV}\n"
            "      tier: enterprise\n"
            "      search_per_second: 1000\n"
            "      retry: {attempts: 8, initial_wait: 0.01, max_wait: 0.2, jitter_seed: 1}\n"
        )

    def prepare(self, settings: Path) -> None:
        os.environ[TOKEN_ENV] = self.sandbox.access_token  # the nurture list is created on first use

    def log_unanswered_calls(self, deal: Deal, count: int) -> None:
        from hubspot.crm.objects import SimplePublicObjectInputForCreate

        now = datetime.now(UTC)
        for n in range(count):
            self.api.crm.objects.basic_api.create(
                "calls",
                SimplePublicObjectInputForCreate(
                    properties={
                        "hs_timestamp": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                        "hs_call_direction": "OUTBOUND",
                        "hs_call_disposition": "73a0d17f-1163-4015-bdd5-ec830791da20",  # no answer
                        "hs_call_body": f"rang, nobody answered ({n + 1})",
                    },
                    associations=[
                        {
                            "to": {"id": deal.id},
                            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 206}],
                        }
                    ],
                ),
            )

    def set_not_now(self, deal: Deal) -> None:
        self._update(deal.id, {"followup_readiness": "not_now"})

    def edit_amount(self, deal: Deal, amount: float) -> None:
        self._update(deal.id, {"amount": str(amount)})

    def _update(self, deal_id: str, properties: dict[str, str]) -> None:
        from hubspot.crm.deals import SimplePublicObjectInput

        self.api.crm.deals.basic_api.update(deal_id, SimplePublicObjectInput(properties=properties))

    def is_closed_lost(self, deal_id: str) -> bool:
        deal = self.api.crm.deals.basic_api.get_by_id(
            deal_id, properties=["hs_is_closed", "hs_is_closed_won"]
        )
        return bool(
            deal.properties["hs_is_closed"] == "true" and deal.properties["hs_is_closed_won"] == "false"
        )

    def followup_state(self, deal_id: str) -> str | None:
        deal = self.api.crm.deals.basic_api.get_by_id(deal_id, properties=["followup_state"])
        state = deal.properties.get("followup_state")
        return None if state is None else str(state)

    def task_is_completed(self, task_id: str) -> bool:
        task = self.api.crm.objects.basic_api.get_by_id("tasks", task_id, properties=["hs_task_status"])
        return bool(task.properties["hs_task_status"] == "COMPLETED")

    def create_task(self, deal: Deal, owner_id: str, kind: str) -> str:
        """A task a person sets on the deal: ``kind`` call or linkedin (HubSpot's LINKED_IN_MESSAGE)."""
        from hubspot.crm.objects import SimplePublicObjectInputForCreate

        task_type = {"call": "CALL", "linkedin": "LINKED_IN_MESSAGE"}[kind]
        created = self.api.crm.objects.basic_api.create(
            "tasks",
            SimplePublicObjectInputForCreate(
                properties={
                    "hs_timestamp": "2030-01-07T09:00:00.000Z",
                    "hs_task_subject": f"My own {kind} task",
                    "hs_task_body": "Notes of my own",
                    "hs_task_status": "NOT_STARTED",
                    "hs_task_type": task_type,
                    "hubspot_owner_id": owner_id,
                },
                associations=[
                    {
                        "to": {"id": deal.id},
                        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 216}],
                    }
                ],
            ),
        )
        return str(created.id)

    def task_text(self, task_id: str) -> str:
        task = self.api.crm.objects.basic_api.get_by_id("tasks", task_id, properties=["hs_task_body"])
        return str(task.properties.get("hs_task_body") or "")

    def in_nurture(self, contact_ids: tuple[str, ...]) -> bool:
        found = self.api.crm.lists.lists_api.get_by_name(NURTURE_LIST, "0-1")
        members = self.api.crm.lists.memberships_api.get_page(found.list.list_id, limit=250)
        return set(contact_ids) <= {m.record_id for m in members.results}


class SalesforceCrm:
    def __init__(self, sandbox: Any) -> None:
        self.sandbox = sandbox

    def connector_section(self) -> str:
        from crm_sandbox.pipelines import stage_ids_by_name

        box = self.sandbox
        return (
            "    salesforce:\n"
            f"      instance_url: '{box.instance_url}'\n"
            f"      login_url: '{box.instance_url}'\n"
            f"      ca_file: '{box.ca_file}'\n"
            "      retry: {attempts: 8, initial_wait: 0.01, max_wait: 0.2, jitter_seed: 1}\n"
            "      auth:\n"
            "        kind: jwt_bearer\n"
            f"        consumer_key: '{box.consumer_key}'\n"
            f"        username: '{box.username}'\n"
            f"        private_key_file: '{box.private_key_file}'\n"
            f"      stage_ids: {json.dumps(stage_ids_by_name())}\n"
        )

    def prepare(self, settings: Path) -> None:
        """``followup setup salesforce``, as an admin runs it once: the nurture campaign."""
        setup = [str(FOLLOWUP), "setup", "salesforce", "--settings", str(settings), "--account", ACCOUNT]
        done = subprocess.run(setup, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stdout + done.stderr

    def _client(self, user_id: str | None = None) -> Any:
        """simple-salesforce as a rep (the deal's owner) or the admin uses it."""
        import requests
        from simple_salesforce.api import Salesforce

        box = self.sandbox
        session = requests.Session()
        session.verify = str(box.ca_file)
        session.trust_env = False
        org = box.org
        token = org.tokens.issue(user_id, org.clock.now()) if user_id else org.issue_token()
        return Salesforce(instance_url=box.instance_url, session_id=token, session=session)

    def log_unanswered_calls(self, deal: Deal, count: int) -> None:
        sf = self._client(deal.owner_id)
        for n in range(count):
            sf.Task.create(
                {
                    "WhatId": deal.id,
                    "Subject": f"Call ({n + 1})",
                    "Status": "Completed",
                    "TaskSubtype": "Call",
                    "CallType": "Outbound",
                    "CallDisposition": "No answer",
                    "ActivityDate": datetime.now(UTC).date().isoformat(),
                }
            )

    def set_not_now(self, deal: Deal) -> None:
        self._client(deal.owner_id).Opportunity.update(deal.id, {"Followup_Readiness__c": "not_now"})

    def edit_amount(self, deal: Deal, amount: float) -> None:
        self._client(deal.owner_id).Opportunity.update(deal.id, {"Amount": amount})

    def is_closed_lost(self, deal_id: str) -> bool:
        opp = self._client().Opportunity.get(deal_id)
        return bool(opp["IsClosed"] and not opp["IsWon"])

    def followup_state(self, deal_id: str) -> str | None:
        state = self._client().Opportunity.get(deal_id)["Followup_State__c"]
        return str(state) if state else None

    def task_is_completed(self, task_id: str) -> bool:
        return bool(self._client().Task.get(task_id)["IsClosed"])

    def create_task(self, deal: Deal, owner_id: str, kind: str) -> str:
        """A Task a person sets on the opportunity: ``kind`` call or meeting (``Type``)."""
        created = self._client(owner_id).Task.create(
            {
                "WhatId": deal.id,
                "OwnerId": owner_id,
                "Subject": f"My own {kind} task",
                "Description": "Notes of my own",
                "Status": "Not Started",
                "TaskSubtype": "Task",
                "Type": {"call": "Call", "meeting": "Meeting"}[kind],
                "ActivityDate": "2030-01-07",
            }
        )
        return str(created["id"])

    def task_text(self, task_id: str) -> str:
        return str(self._client().Task.get(task_id)["Description"] or "")

    def in_nurture(self, contact_ids: tuple[str, ...]) -> bool:
        sf = self._client()
        members = sf.query_all(
            "SELECT ContactId FROM CampaignMember WHERE Campaign.Name = 'crm-followup nurture'"
        )["records"]
        return set(contact_ids) <= {m["ContactId"] for m in members}


@dataclass
class World:
    """A sandbox CRM, a settings file that reaches it, and the worker's state store."""

    crm: Crm
    settings: Path
    store_url: str
    policy: Path

    def run(self) -> dict[str, int]:
        """``followup run --once``; the counts of the cycle it ran."""
        command = [str(FOLLOWUP), "run", "--once", "--settings", str(self.settings)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        with self.store() as store:
            last = store.runs(ACCOUNT, limit=1)[0]
        assert last.status == "ok", last
        return {k: int(v) for k, v in last.counts.items()}

    def shadow(self, on: bool) -> None:
        """Switch shadow mode in the settings file, as an operator does."""
        text = self.settings.read_text(encoding="utf-8")
        self.settings.write_text(
            text.replace(f"shadow: {'false' if on else 'true'}", f"shadow: {'true' if on else 'false'}"),
            encoding="utf-8",
        )

    def store(self) -> _Store:
        return _Store(self.store_url)

    def ledger(self) -> dict[str, LedgerEntry]:
        with self.store() as store:
            return {e.key: e for e in store.ledger(ACCOUNT)}

    def mirrored(self) -> list[Deal]:
        with self.store() as store:
            return [d for chunk in store.iter_mirror(ACCOUNT, 1000) for d in chunk]


class _Store:
    def __init__(self, url: str) -> None:
        self.url = url

    def __enter__(self) -> StateStore:
        self.store = StateStore(self.url)
        return self.store

    def __exit__(self, *_: object) -> None:
        self.store.close()


@pytest.fixture(params=["hubspot", "salesforce"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """A sandbox on real time (``followup`` reads the system clock), seeded with 40 deals."""
    from crm_sandbox.hubspot import RateLimitConfig, running_hubspot_sandbox
    from crm_sandbox.salesforce import running_salesforce_sandbox

    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    store_url = f"sqlite:///{tmp_path / 'state.sqlite'}"

    def settings_for(crm: Crm) -> Path:
        path = tmp_path / "settings.yaml"
        path.write_text(
            f"store: {{url: '{store_url}'}}\n"
            "logging: {level: warning, format: json}\n"
            "accounts:\n"
            f"  {ACCOUNT}:\n"
            f"    crm: {request.param}\n"
            f"    policy: '{policy}'\n"
            "    shadow: false\n"
            "    apply_batch_size: 10\n" + crm.connector_section(),
            encoding="utf-8",
        )
        crm.prepare(path)
        return path

    if request.param == "hubspot":
        with running_hubspot_sandbox(seed=7, deals=40, rate_limits=RateLimitConfig.off()) as hs:
            crm: Crm = HubSpotCrm(hs)
            yield World(crm, settings_for(crm), store_url, policy)
        os.environ.pop(TOKEN_ENV, None)
    else:
        with running_salesforce_sandbox(seed=7, deals=40) as sf:
            crm = SalesforceCrm(sf)
            yield World(crm, settings_for(crm), store_url, policy)


def _open_with_task(world: World) -> list[Deal]:
    """Mirrored deals still open and active, with an open crm-followup task, most recently read first."""
    deals = [
        d
        for d in world.mirrored()
        if not d.is_closed and d.followup_state.value == "active" and any(t.is_open for t in d.auto_tasks)
    ]
    assert len(deals) >= 3, "the first cycle should leave open deals with an open auto-task"
    return sorted(deals, key=lambda d: d.id)


def _written(
    before: dict[str, LedgerEntry], after: dict[str, LedgerEntry], deal_id: str
) -> list[LedgerEntry]:
    return [e for k, e in after.items() if e.deal_id == deal_id and k not in before]


def test_stop_and_nurture_with_an_open_task_land_in_the_same_cycle(world: World) -> None:
    """A deal that reaches a stop and one that goes to nurture, each with an open crm-followup task, are
    closed lost / in nurture after the one cycle that decides it: the task close does not make the stage or
    state change conflict, and nothing waits for the next cycle."""
    first = world.run()
    assert first["applied"] > 0
    stopping, nurturing = _open_with_task(world)[:2]
    world.crm.log_unanswered_calls(stopping, 3)
    world.crm.set_not_now(nurturing)
    before = world.ledger()

    second = world.run()

    after = world.ledger()
    assert second.get("conflict", 0) == 0
    stop = _written(before, after, stopping.id)
    nurture = _written(before, after, nurturing.id)
    assert {"change_stage", "close_task"} <= {e.kind for e in stop}
    assert {"set_deal_fields", "close_task", "enrol_in_nurture"} <= {e.kind for e in nurture}
    assert {e.status for e in stop + nurture} == {"applied"}, [
        (e.kind, e.status, e.error) for e in stop + nurture
    ]
    assert world.crm.is_closed_lost(stopping.id)
    assert world.crm.followup_state(nurturing.id) == "nurture"
    assert world.crm.in_nurture(tuple(c.id for c in nurturing.contacts))
    for deal in (stopping, nurturing):
        for task in deal.auto_tasks:
            assert world.crm.task_is_completed(task.id), (deal.id, task.id)


def test_a_rerun_pulls_no_deal_whose_only_change_was_ours(world: World) -> None:
    """After a cycle that wrote to many deals, a rerun with nothing changed by anyone else pulls no more
    deals than a rerun after a cycle that wrote nothing (shadow: the look-back overlap alone); a deal a rep
    changes after our write is pulled again, with the rep's change."""
    world.shadow(True)
    world.run()  # full pull, decides, writes nothing
    overlap = world.run()["pulled"]  # what an incremental re-reads when nobody wrote anything
    world.shadow(False)
    acted = world.run()
    written = {e.deal_id for e in world.ledger().values() if e.status == "applied"}
    assert acted["applied"] > 0
    assert len(written) >= 10

    rerun = world.run()

    assert rerun["pulled"] <= overlap < len(written)
    assert rerun.get("new", 0) == 0  # and nothing to do: the mirror already holds our writes
    edited = next(d for d in _open_with_task(world) if d.id in written)
    world.crm.edit_amount(edited, 123456.0)

    after_edit = world.run()

    assert 1 <= after_edit["pulled"] <= overlap + 1
    assert next(d for d in world.mirrored() if d.id == edited.id).amount == 123456.0


def test_the_stamp_we_remember_is_ours_alone(world: World) -> None:
    """Right after the cycle that wrote to a deal (no pull in between), a conditional write made with the
    stamp the worker remembers goes through on a deal nobody else touched since, and conflicts on one a rep
    changed after our write: the remembered stamp is the CRM's answer to our own write, nothing else."""
    world.run()
    untouched, edited = _open_with_task(world)[:2]
    world.crm.set_not_now(untouched)
    world.crm.set_not_now(edited)
    world.run()  # both go to nurture: our state change is their last write
    world.crm.edit_amount(edited, 98765.0)
    remembered = {d.id: d for d in world.mirrored()}
    settings = read_settings_file(world.settings)
    connector = worker.build_connector(worker.load_account(settings, ACCOUNT))
    try:
        outcomes = connector.apply(
            [
                SetDealFields(
                    key=f"cf-{n:020d}",
                    deal_id=deal.id,
                    rule_id="test",
                    explanation=Explanation("written with the stamp the worker remembers"),
                    fields={DealField.NEXT_STEP: "Call the buyer on Monday about the pricing"},
                    expected_modified_at=remembered[deal.id].modified_at,
                )
                for n, deal in enumerate((untouched, edited))
            ]
        )
    finally:
        connector.close()
    assert [o.status for o in outcomes] == [OutcomeStatus.APPLIED, OutcomeStatus.CONFLICT]


def test_a_nurture_closes_the_owners_own_follow_up_tasks_and_only_those(world: World) -> None:
    """With ``nurture.close_rep_tasks``, the cycle that nurtures a deal also completes its owner's own open
    call task on it, with the reason below the owner's text; a colleague's task and the owner's task of
    another kind (LinkedIn on HubSpot, a meeting on Salesforce) stay open and untouched."""
    world.policy.write_text(
        POLICY.replace("move_stage_back: false}", "move_stage_back: false, close_rep_tasks: true}"),
        encoding="utf-8",
    )
    world.run()
    candidates = _open_with_task(world)
    nurtured = candidates[0]
    assert nurtured.owner_id is not None
    colleague = next(d.owner_id for d in world.mirrored() if d.owner_id not in (None, nurtured.owner_id))
    assert colleague is not None
    other_kind = "linkedin" if isinstance(world.crm, HubSpotCrm) else "meeting"
    own = world.crm.create_task(nurtured, nurtured.owner_id, "call")
    theirs = world.crm.create_task(nurtured, colleague, "call")
    not_a_follow_up = world.crm.create_task(nurtured, nurtured.owner_id, other_kind)
    world.crm.set_not_now(nurtured)
    before = world.ledger()

    second = world.run()

    assert second.get("conflict", 0) == 0
    closes = [e for e in _written(before, world.ledger(), nurtured.id) if e.kind == "close_task"]
    assert {e.status for e in closes} == {"applied"}
    assert own in {i for e in closes for i in e.crm_ids}
    assert world.crm.followup_state(nurtured.id) == "nurture"
    assert world.crm.task_is_completed(own)
    text = world.crm.task_text(own)
    assert text.startswith("Notes of my own")
    assert "Closed by crm-followup: the deal was closed or moved to nurture" in text
    assert "crm-followup key:" not in text  # never made to look like one of ours
    for untouched in (theirs, not_a_follow_up):
        assert not world.crm.task_is_completed(untouched)
        assert world.crm.task_text(untouched) == "Notes of my own"
