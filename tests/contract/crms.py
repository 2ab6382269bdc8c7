"""The three CRMs of the contract suite, behind one interface: what a test does in the CRM, and reads back.

Each is a ``ContractCrm``: it builds connectors (a fresh one is a restarted worker), acts as a rep in the
CRM (through the official client: hubspot-api-client, simple-salesforce; or on ``InMemoryCrm`` directly),
reads back what the CRM holds, and switches faults on and off. Nothing here goes through the connector
under test, so what a test reads back is the CRM's truth, not the connector's view of it.

The sandboxes run on real time, shifted forward by ``tick()`` so that a rep's change after our read (or
our write) always gets a later stamp, as it would a moment later in a real CRM. The connectors read the
same shifted time (``now``), and a clock that moves only when slept on (``tests.clocks.FakeTime``), so
their retries and rate limiting never wait for real.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any, Protocol

import requests
from crm_sandbox.dataset import Dataset
from crm_sandbox.faults import FaultConfig
from crm_sandbox.hubspot import HubSpotSandbox
from crm_sandbox.salesforce import SalesforceSandbox
from hubspot import HubSpot
from simple_salesforce.api import Salesforce

from connectors.base import CrmConnector
from connectors.errors import RetryLater
from connectors.hubspot import HubSpotOptions, build_hubspot_connector
from connectors.memory import InMemoryCrm
from connectors.salesforce import SalesforceOptions, build_salesforce_connector
from connectors.sandbox_dataset import snapshot_from_dataset
from policies.model import Activity, ActivityKind, Direction, Outcome
from tests.clocks import FakeTime
from tests.sobjects import sobject

KEY_LINE = re.compile(r"crm-followup key: (\S+)")
HUBSPOT_TOKEN_ENV = "CONTRACT_HUBSPOT_TOKEN"
RETRY = {"attempts": 8, "initial_wait": 0.05, "max_wait": 2.0, "jitter_seed": 3}


class ContractCrm(Protocol):
    """One CRM as the contract suite drives it."""

    name: str

    def connector(self, **options: Any) -> CrmConnector:
        """A fresh connector (a restarted worker); ``options`` of its settings section, e.g. batch sizes
        (``deals_per_batch``: deals per pulled batch)."""
        ...

    def now(self) -> datetime:
        """The CRM's time (the connectors read it too)."""
        ...

    def tick(self) -> None:
        """Let a few seconds pass in the CRM, so that the next change gets a later stamp."""
        ...

    # -- a rep, or another integration, in the CRM --------------------------------------------------

    def edit_next_step(self, deal_id: str, text: str, owner_id: str | None) -> None: ...

    def log_inbound_call(self, deal_id: str, owner_id: str | None) -> str:
        """Log a connected inbound call on the deal; the activity's id as the connector reports it."""
        ...

    def remove(self, deal_id: str) -> None:
        """Archive or delete the deal."""
        ...

    def prepare_nurture(self, name: str) -> None:
        """What ``followup setup`` makes for a nurture (a campaign in Salesforce; lists are made on use)."""
        ...

    # -- what the CRM holds -------------------------------------------------------------------------

    def deal_ids(self) -> set[str]: ...

    def task(self, task_id: str) -> tuple[str | None, bool]:
        """(our key in the task, whether it is open)."""
        ...

    def stage(self, deal_id: str) -> str:
        """The deal's stage id, as the connectors name it."""
        ...

    def followup_state(self, deal_id: str) -> str | None: ...

    def members(self, nurture: str) -> set[str]:
        """The contact ids in the nurture list or campaign."""
        ...

    def task_keys(self, deal_ids: Collection[str]) -> list[str]:
        """Our key of every task on these deals, once per task (a duplicate shows twice)."""
        ...

    def stamps(self) -> dict[str, object]:
        """The modification stamp of every deal and task: unchanged means nothing was written."""
        ...

    # -- faults ---------------------------------------------------------------------------------------

    def faults(self, on: bool) -> None:
        """Transient faults on (5xx, dropped connections, rate limits, lock errors) or off."""
        ...

    def faults_seen(self) -> int:
        """How many injected faults were met since they were switched on."""
        ...


class _SandboxTime:
    """A sandbox's clock: real time plus an offset that ``tick`` moves on; the sandbox is told each time."""

    def __init__(self, control: Any) -> None:
        self._control = control
        self._offset = timedelta(0)
        control.set_clock(None)

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def tick(self) -> None:
        self._offset += timedelta(seconds=3)
        self._control.set_clock(self.now(), ticking=True)

    def clocks(self) -> dict[str, Any]:
        fake = FakeTime()
        return {"now": self.now, "monotonic": fake.monotonic, "sleep": fake.sleep}


# ------------------------------------------------------------------------------------------ memory


class MemoryContractCrm:
    """``InMemoryCrm`` seeded with the same generated dataset the sandboxes serve."""

    name = "memory"

    def __init__(self, dataset: Dataset) -> None:
        snapshot = snapshot_from_dataset(dataset)
        self._now = datetime.now(UTC)
        self.crm = InMemoryCrm(
            owners=snapshot.owners, pipelines=snapshot.pipelines, deals=snapshot.deals, clock=self.now
        )
        self._activity = count(1)

    def connector(self, **options: Any) -> CrmConnector:
        self.crm.page_size = int(options.get("deals_per_batch", 100))
        return self.crm  # one CRM in memory: a restarted worker talks to the same one

    def now(self) -> datetime:
        return self._now

    def tick(self) -> None:
        self._now += timedelta(seconds=3)

    def edit_next_step(self, deal_id: str, text: str, owner_id: str | None) -> None:
        deal = self.crm.deal(deal_id)
        self.crm.put_deal(replace(deal, next_step=replace(deal.next_step, what=text), modified_at=self.now()))

    def log_inbound_call(self, deal_id: str, owner_id: str | None) -> str:
        deal = self.crm.deal(deal_id)
        contacts = tuple(c.id for c in deal.contacts[:1])
        call = Activity(
            f"calls:new-{next(self._activity)}",
            ActivityKind.CALL,
            Direction.INBOUND,
            self.now(),
            Outcome.CONNECTED,
            contacts,
        )
        self.crm.put_deal(replace(deal, activities=(*deal.activities, call)))  # the deal's stamp stays
        return call.id

    def remove(self, deal_id: str) -> None:
        self.crm.remove_deal(deal_id)

    def prepare_nurture(self, name: str) -> None:
        """Nothing: a nurture list is made when first used."""

    def deal_ids(self) -> set[str]:
        return {d.id for d in self.crm.deals()}

    def task(self, task_id: str) -> tuple[str | None, bool]:
        task = next(t.task for t in self.crm.tasks() if t.task.id == task_id)
        return task.key, task.is_open

    def stage(self, deal_id: str) -> str:
        return self.crm.deal(deal_id).stage.id

    def followup_state(self, deal_id: str) -> str | None:
        return self.crm.deal(deal_id).followup_state.value

    def members(self, nurture: str) -> set[str]:
        return set(self.crm.nurture.get(nurture, set()))

    def task_keys(self, deal_ids: Collection[str]) -> list[str]:
        return [t.task.key for t in self.crm.tasks() if t.deal_id in deal_ids]

    def stamps(self) -> dict[str, object]:
        return {"revision": self.crm.revision}

    def faults(self, on: bool) -> None:
        if on:  # a pull that breaks after its first page, an apply that never reaches the CRM
            self.crm.fail("pull_page", RetryLater("injected: 503"), after=1)
            self.crm.fail("apply", RetryLater("injected: connection dropped"))
            self._injected = 2
        else:
            self.crm.clear_faults()

    def faults_seen(self) -> int:
        return self._injected - self.crm.faults_left()


# ------------------------------------------------------------------------------------------ HubSpot


class HubSpotContractCrm:
    """The HubSpot sandbox, driven by a rep through hubspot-api-client."""

    name = "hubspot"

    def __init__(self, sandbox: HubSpotSandbox) -> None:
        self.sandbox = sandbox
        self.sdk = HubSpot(access_token=sandbox.access_token, host=sandbox.base_url)
        self._time = _SandboxTime(sandbox.control)
        self._built: list[CrmConnector] = []
        os.environ[HUBSPOT_TOKEN_ENV] = sandbox.access_token

    def connector(self, **options: Any) -> CrmConnector:
        settings = HubSpotOptions.model_validate(
            {
                "host": self.sandbox.base_url,
                "access_token_env": HUBSPOT_TOKEN_ENV,
                "activity_lookback_days": 3650,
                "tier": "enterprise",
                "retry": RETRY,
                **options,
            }
        )
        built = build_hubspot_connector(settings, **self._time.clocks())
        self._built.append(built)
        return built

    def close(self) -> None:
        for connector in self._built:
            connector.close()

    def now(self) -> datetime:
        return self._time.now()

    def tick(self) -> None:
        self._time.tick()

    def edit_next_step(self, deal_id: str, text: str, owner_id: str | None) -> None:
        self.sdk.crm.deals.basic_api.update(deal_id, {"properties": {"hs_next_step": text}})

    def log_inbound_call(self, deal_id: str, owner_id: str | None) -> str:
        from hubspot.crm.objects import SimplePublicObjectInputForCreate

        call = self.sdk.crm.objects.basic_api.create(
            "calls",
            SimplePublicObjectInputForCreate(
                properties={
                    "hs_timestamp": self.now().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                    "hs_call_direction": "INBOUND",
                    "hs_call_disposition": "f240bbac-87c9-4f6e-bf70-924b57d47db7",  # connected
                },
                associations=[
                    {
                        "to": {"id": deal_id},
                        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 206}],
                    }
                ],
            ),
        )
        return f"calls:{call.id}"

    def remove(self, deal_id: str) -> None:
        self.sdk.crm.deals.basic_api.archive(deal_id)

    def prepare_nurture(self, name: str) -> None:
        """Nothing: the connector makes a MANUAL contact list when it first enrols into it."""

    def deal_ids(self) -> set[str]:
        return {r["id"] for r in self._all("deals", ["hs_object_id"])}

    def task(self, task_id: str) -> tuple[str | None, bool]:
        task = self.sdk.crm.objects.basic_api.get_by_id(
            "tasks", task_id, properties=["hs_task_body", "hs_task_status"]
        )
        found = KEY_LINE.search(task.properties.get("hs_task_body") or "")
        return (found.group(1) if found else None), task.properties["hs_task_status"] != "COMPLETED"

    def stage(self, deal_id: str) -> str:
        return str(self._deal(deal_id, "dealstage"))

    def followup_state(self, deal_id: str) -> str | None:
        return self._deal(deal_id, "followup_state") or None

    def members(self, nurture: str) -> set[str]:
        from hubspot.crm.lists.exceptions import NotFoundException

        try:
            found = self.sdk.crm.lists.lists_api.get_by_name(nurture, "0-1")
        except NotFoundException:
            return set()
        page = self.sdk.crm.lists.memberships_api.get_page(found.list.list_id, limit=250)
        return {str(m.record_id) for m in page.results}

    def task_keys(self, deal_ids: Collection[str]) -> list[str]:
        keys: list[str] = []
        for deal_id in deal_ids:
            links = self.sdk.crm.associations.v4.basic_api.get_page("deals", deal_id, "tasks", limit=500)
            for link in links.results:
                key, _open = self.task(str(link.to_object_id))
                if key is not None:
                    keys.append(key)
        return keys

    def stamps(self) -> dict[str, object]:
        deals = {f"deal:{r['id']}": r["updatedAt"] for r in self._all("deals", ["hs_object_id"])}
        tasks = {f"task:{r['id']}": r["updatedAt"] for r in self._all("tasks", ["hs_task_status"])}
        return deals | tasks

    def faults(self, on: bool) -> None:
        self.sandbox.control.reset_stats()
        config = FaultConfig(
            error_rate=0.08, rate_limit_storm=0.04, rate_limit_burst=2, drop_rate=0.08, seed=8
        )
        self.sandbox.control.set_faults(config if on else None)

    def faults_seen(self) -> int:
        return sum(self.sandbox.control.stats()["faults"].values())

    def _deal(self, deal_id: str, name: str) -> Any:
        return self.sdk.crm.deals.basic_api.get_by_id(deal_id, properties=[name]).properties.get(name)

    def _all(self, object_type: str, properties: list[str]) -> Iterable[dict[str, Any]]:
        """Every live record, through the plain list endpoint (as JSON: ``updatedAt`` as sent)."""
        after: str | None = None
        while True:
            page = self.sdk.crm.objects.basic_api.get_page(
                object_type, limit=100, after=after, properties=properties, _preload_content=False
            )
            body = page.json()
            yield from body.get("results") or []
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return


# ------------------------------------------------------------------------------------------ Salesforce


class SalesforceContractCrm:
    """The Salesforce sandbox over HTTPS, driven by reps (each as their own user) with simple-salesforce."""

    name = "salesforce"

    def __init__(self, sandbox: SalesforceSandbox) -> None:
        self.sandbox = sandbox
        self._time = _SandboxTime(sandbox.control)
        self._sessions: list[requests.Session] = []
        self._built: list[CrmConnector] = []

    def connector(self, **options: Any) -> CrmConnector:
        """Authenticated as in production (JWT bearer), so the connector knows which writes are its own."""
        box = self.sandbox
        settings = SalesforceOptions.model_validate(
            {
                "instance_url": box.instance_url,
                "login_url": box.instance_url,
                "ca_file": str(box.ca_file),
                "auth": {
                    "kind": "jwt_bearer",
                    "consumer_key": box.consumer_key,
                    "username": box.username,
                    "private_key_file": str(box.private_key_file),
                },
                "retry": RETRY,
                **options,
            }
        )
        built = build_salesforce_connector(settings, **self._time.clocks())
        self._built.append(built)
        return built

    def now(self) -> datetime:
        return self._time.now()

    def tick(self) -> None:
        self._time.tick()

    def client(self, user_id: str | None = None) -> Salesforce:
        """simple-salesforce as a rep (``user_id``: the deal's owner) or else as the integration user."""
        org = self.sandbox.org
        session = requests.Session()
        session.verify = str(self.sandbox.ca_file)
        session.trust_env = False
        self._sessions.append(session)
        token = org.tokens.issue(user_id, org.clock.now()) if user_id else org.issue_token()
        return Salesforce(instance_url=self.sandbox.instance_url, session_id=token, session=session)

    def close(self) -> None:
        for connector in self._built:
            connector.close()
        for session in self._sessions:
            session.close()

    def edit_next_step(self, deal_id: str, text: str, owner_id: str | None) -> None:
        sobject(self.client(owner_id), "Opportunity").update(deal_id, {"NextStep": text})

    def log_inbound_call(self, deal_id: str, owner_id: str | None) -> str:
        created = sobject(self.client(owner_id), "Task").create(
            {
                "WhatId": deal_id,
                "Subject": "Inbound call",
                "Status": "Completed",
                "TaskSubtype": "Call",
                "CallType": "Inbound",
                "CallDisposition": "Connected",
                "ActivityDate": self.now().date().isoformat(),
            }
        )
        return str(created["id"])

    def remove(self, deal_id: str) -> None:
        sobject(self.client(), "Opportunity").delete(deal_id)

    def prepare_nurture(self, name: str) -> None:
        """The campaign with its member statuses, as ``followup setup salesforce`` makes it."""
        sf = self.client()
        campaign = str(sobject(sf, "Campaign").create({"Name": name, "IsActive": True})["id"])
        for label, responded in (("Nurture", False), ("Responded", True)):
            sobject(sf, "CampaignMemberStatus").create(
                {"CampaignId": campaign, "Label": label, "HasResponded": responded, "IsDefault": False}
            )

    def deal_ids(self) -> set[str]:
        return {r["Id"] for r in self._query("SELECT Id FROM Opportunity")}

    def task(self, task_id: str) -> tuple[str | None, bool]:
        row = sobject(self.client(), "Task").get(task_id)
        return row.get("Followup_Key__c"), not row["IsClosed"]

    def stage(self, deal_id: str) -> str:
        return str(sobject(self.client(), "Opportunity").get(deal_id)["StageName"])

    def followup_state(self, deal_id: str) -> str | None:
        return sobject(self.client(), "Opportunity").get(deal_id).get("Followup_State__c") or None

    def members(self, nurture: str) -> set[str]:
        query = f"SELECT ContactId FROM CampaignMember WHERE Campaign.Name = '{nurture}'"
        return {r["ContactId"] for r in self._query(query)}

    def task_keys(self, deal_ids: Collection[str]) -> list[str]:
        ids = ",".join(f"'{i}'" for i in deal_ids)
        query = f"SELECT Followup_Key__c FROM Task WHERE WhatId IN ({ids}) AND Followup_Key__c != null"
        return [r["Followup_Key__c"] for r in self._query(query)]

    def stamps(self) -> dict[str, object]:
        rows = [*self._query("SELECT Id, SystemModstamp FROM Opportunity")]
        rows += self._query("SELECT Id, SystemModstamp FROM Task")
        return {r["Id"]: r["SystemModstamp"] for r in rows}

    def faults(self, on: bool) -> None:
        self.sandbox.control.reset_stats()
        self.sandbox.control.set_faults(FaultConfig(error_rate=0.15, drop_rate=0.1, seed=5) if on else None)
        self.sandbox.org.sf_faults.configure(0.2 if on else 0.0, 5)  # UNABLE_TO_LOCK_ROW on writes

    def faults_seen(self) -> int:
        return sum(self.sandbox.control.stats()["faults"].values())

    def _query(self, soql: str) -> list[dict[str, Any]]:
        return list(self.client().query_all(soql)["records"])
