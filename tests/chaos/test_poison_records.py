"""Poison records on both CRMs, through the real entry point: ``followup run --once`` in a subprocess.

Each test seeds a sandbox, poisons a few deals the way the CRM's own API lets a rep (or an import) do it,
runs the worker, and then runs it again on the same seeded data minus the poisoned deals, on a fresh state
store. The poisoned deals must be rejected with their field and reason (the ``record_rejected`` log line,
an audit row, the run's ``rejected`` count), the run must exit 0, and every other deal must end up exactly
as in the clean run: the same crm-followup tasks (by idempotency key and status), the same stages and
follow-up states.

Values the real API refuses are seeded through the sandbox's dataset (its loader renders them) rather than
written, and said so below:

* HubSpot's API takes numbers as digits only (no exponent, no NaN), so a 401-digit amount is written
  through the API and a ``NaN`` score is seeded (data from before HubSpot validated numbers).
* Salesforce's ``User.TimeZoneSidKey`` is a restricted picklist, so an owner with a zone this machine's
  zoneinfo does not know is seeded; both runs have it, and it must cost a warning, not a rejection.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from crm_sandbox.dataset import Dataset, GenDeal, generate

from store import StateStore
from tests.e2e.conftest import POLICY, REPO, all_records
from tests.sobjects import sobject

SEED = 17
DEALS = 30
TOKEN_ENV = "CHAOS_POISON_HUBSPOT_TOKEN"
UNKNOWN_ZONE = "Mars/Olympus_Mons"


@dataclass
class Run:
    code: int
    lines: list[dict[str, Any]]
    store_url: str

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("event") == name]

    @property
    def counts(self) -> dict[str, int]:
        (finished,) = self.events("cycle_finished")
        return dict(finished["counts"])


def run_followup(folder: Path, connector_section: str) -> Run:
    """``followup run --once --settings FILE`` in a subprocess, JSON logs on stderr parsed."""
    folder.mkdir(parents=True, exist_ok=True)
    store_url = f"sqlite:///{folder / 'state.sqlite'}"
    settings = folder / "settings.yaml"
    settings.write_text(
        f"store: {{url: '{store_url}'}}\n"
        "logging: {level: info, format: json}\n"
        "accounts:\n"
        "  poison:\n"
        f"    policy: '{POLICY}'\n"
        "    apply_batch_size: 25\n" + connector_section,
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-c", "from cli import main; main()", "run", "--once", "--settings", str(settings)],
        cwd=REPO,
        capture_output=True,
        timeout=600,
        env=os.environ.copy(),
        check=False,
    )
    lines = [json.loads(line) for line in done.stderr.decode().splitlines() if line.startswith("{")]
    assert "Traceback" not in done.stderr.decode(), done.stderr.decode()[-3000:]
    return Run(done.returncode, lines, store_url)


def _open_deals(dataset: Dataset) -> list[GenDeal]:
    closed = {s.id for p in dataset.pipelines for s in p.stages if s.is_closed}
    return [d for d in dataset.deals if d.stage_id not in closed]


def _with(dataset: Dataset, deal_id: int, **changes: Any) -> Dataset:
    deals = tuple(dataclasses.replace(d, **changes) if d.id == deal_id else d for d in dataset.deals)
    return dataclasses.replace(dataset, deals=deals)


# -------------------------------------------------------------------------------------------- HubSpot


class HubSpotWorld:
    def __init__(self, sandbox: Any) -> None:
        from hubspot import HubSpot

        self.sandbox = sandbox
        self.api = HubSpot(access_token=sandbox.access_token, host=sandbox.base_url)
        self.section = (
            "    crm: hubspot\n"
            "    hubspot:\n"
            f"      host: '{sandbox.base_url}'\n"
            f"      access_token_env: {TOKEN_ENV}\n"
            "      tier: enterprise\n"
            "      search_per_second: 50\n"
            "      retry: {attempts: 8, initial_wait: 0.01, max_wait: 0.2, jitter_seed: 1}\n"
        )

    def write(self, deal_id: str, properties: dict[str, str]) -> None:
        from hubspot.crm.deals import SimplePublicObjectInput

        self.api.crm.deals.basic_api.update(deal_id, SimplePublicObjectInput(properties=properties))

    def remove(self, deal_id: str) -> None:
        self.api.crm.deals.basic_api.archive(deal_id)

    def state(self) -> tuple[dict[str, tuple[str, str]], Counter[str]]:
        deals = {
            d.id: (d.properties.get("dealstage") or "", d.properties.get("followup_state") or "")
            for d in all_records(self.api.crm.deals.basic_api, ["dealstage", "followup_state"])
        }
        tasks: Counter[str] = Counter()
        for task in all_records(self.api.crm.objects.tasks.basic_api, ["hs_task_body", "hs_task_status"]):
            for line in (task.properties.get("hs_task_body") or "").splitlines():
                if line.startswith("crm-followup key: "):
                    tasks[f"{line.split()[2]}:{task.properties.get('hs_task_status')}"] += 1
        return deals, tasks


@contextmanager
def hubspot(dataset: Dataset, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubSpotWorld]:
    from crm_sandbox.hubspot import RateLimitConfig, running_hubspot_sandbox

    with running_hubspot_sandbox(dataset=dataset, rate_limits=RateLimitConfig.off()) as hs:
        monkeypatch.setenv(TOKEN_ENV, hs.access_token)
        yield HubSpotWorld(hs)


# ----------------------------------------------------------------------------------------- Salesforce


class SalesforceWorld:
    def __init__(self, sandbox: Any) -> None:
        from crm_sandbox.pipelines import stage_ids_by_name
        from simple_salesforce.api import Salesforce

        session = requests.Session()
        session.verify = str(sandbox.ca_file)
        session.trust_env = False
        self.sandbox = sandbox
        self.api = Salesforce(
            instance_url=sandbox.instance_url, session_id=sandbox.access_token, session=session
        )
        self.section = (
            "    crm: salesforce\n"
            "    salesforce:\n"
            f"      instance_url: '{sandbox.instance_url}'\n"
            f"      login_url: '{sandbox.instance_url}'\n"
            f"      ca_file: '{sandbox.ca_file}'\n"
            "      auth:\n"
            "        kind: jwt_bearer\n"
            f"        consumer_key: '{sandbox.consumer_key}'\n"
            f"        username: '{sandbox.username}'\n"
            f"        private_key_file: '{sandbox.private_key_file}'\n"
            f"      stage_ids: {json.dumps(stage_ids_by_name())}\n"
        )

    def write(self, deal_id: str, fields: dict[str, Any]) -> None:
        sobject(self.api, "Opportunity").update(deal_id, fields)

    def remove(self, deal_id: str) -> None:
        sobject(self.api, "Opportunity").delete(deal_id)

    def state(self) -> tuple[dict[str, tuple[str, str]], Counter[str]]:
        deals = {
            r["Id"]: (r["StageName"] or "", r["Followup_State__c"] or "")
            for r in self.api.query_all("SELECT Id, StageName, Followup_State__c FROM Opportunity")["records"]
        }
        rows = self.api.query_all("SELECT Followup_Key__c, Status FROM Task WHERE Followup_Key__c != null")
        tasks = Counter(f"{r['Followup_Key__c']}:{r['Status']}" for r in rows["records"])
        return deals, tasks


@contextmanager
def salesforce(dataset: Dataset) -> Iterator[SalesforceWorld]:
    from crm_sandbox.salesforce import running_salesforce_sandbox

    with running_salesforce_sandbox(dataset=dataset) as sf:
        yield SalesforceWorld(sf)


def sf_id(prefix: str, number: int) -> str:
    from crm_sandbox.salesforce.ids import make_id

    return make_id(prefix, number)


# ------------------------------------------------------------------------------------------- the runs


def poisoned_and_clean(
    world: Any,
    tmp_path: Path,
    poisons: dict[str, dict[str, Any]],
    seeded_poison: list[str],
) -> tuple[Run, Run, tuple[Any, Any], tuple[Any, Any]]:
    """Run on the poisoned data, then on the same seeded data minus every poisoned deal."""
    world.sandbox.control.snapshot("seeded")
    for deal_id, values in poisons.items():
        world.write(deal_id, values)
    poisoned = run_followup(tmp_path / "poisoned", world.section)
    poisoned_state = world.state()
    world.sandbox.control.restore("seeded")
    for deal_id in [*poisons, *seeded_poison]:
        world.remove(deal_id)
    clean = run_followup(tmp_path / "clean", world.section)
    return poisoned, clean, poisoned_state, world.state()


def assert_rejected(run: Run, expected: dict[str, tuple[str, str]]) -> None:
    """Each poisoned deal: one record_rejected line with its field and reason, an audit row, the count."""
    found = {e["record_id"]: (e["field"], e["reason"]) for e in run.events("record_rejected")}
    assert found == expected
    assert run.counts["rejected"] == len(expected)
    store = StateStore(run.store_url)
    try:
        for deal_id, (field, reason) in expected.items():
            rows = [a for a in store.audit("poison", deal_id=deal_id) if a["rule_id"] == "record_rejected"]
            assert len(rows) == 1, rows
            assert rows[0]["outcome"] == "rejected"
            evidence = dict(rows[0]["explanation"]["evidence"])
            assert (evidence["field"], evidence["reason"]) == (field, reason)
    finally:
        store.close()


def assert_same_for_the_others(
    poisoned: tuple[Any, Any], clean: tuple[Any, Any], removed: list[str], untouched: Callable[[str], bool]
) -> None:
    """Every deal but the poisoned ones ends as in the clean run; the poisoned ones got nothing from us."""
    (deals_p, tasks_p), (deals_c, tasks_c) = poisoned, clean
    others = {k: v for k, v in deals_p.items() if k not in removed}
    assert others == deals_c
    assert tasks_p == tasks_c  # the poisoned deals got no task, the clean run never saw them
    assert sum(tasks_c.values()) > 0  # the run did act: the comparison is not empty against empty
    assert all(untouched(deal_id) for deal_id in removed)


@pytest.mark.slow  # a sandbox and followup run --once: ~13 s
def test_hubspot_poison_records_are_rejected_and_the_rest_is_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interval 10^9 and -5, a 401-digit amount, a close date in 9999 (API writes), a NaN score (seeded)."""
    dataset = generate(SEED, DEALS, datetime.now(UTC))
    targets = [str(d.id) for d in _open_deals(dataset)[:5]]
    seeded = targets[4]
    dataset = _with(dataset, int(seeded), qualification_score=float("nan"))  # the API refuses "NaN"
    poisons = {
        targets[0]: {"followup_agreed_interval_days": "1000000000"},
        targets[1]: {"followup_agreed_interval_days": "-5"},
        targets[2]: {"amount": "1" + "0" * 400},
        targets[3]: {"closedate": "9999-12-31"},
    }
    with hubspot(dataset, monkeypatch) as world:
        seeded_before = world.state()[0][seeded]
        poisoned, clean, state_p, state_c = poisoned_and_clean(world, tmp_path, poisons, [seeded])
    assert (poisoned.code, clean.code) == (0, 0)
    assert_rejected(
        poisoned,
        {
            targets[0]: ("followup_agreed_interval_days", "out_of_range"),
            targets[1]: ("followup_agreed_interval_days", "out_of_range"),
            targets[2]: ("amount", "out_of_range"),
            targets[3]: ("closedate", "out_of_range"),
            seeded: ("followup_qualification_score", "unreadable"),
        },
    )
    assert clean.counts.get("rejected", 0) == 0
    assert state_p[0][seeded] == seeded_before
    assert_same_for_the_others(state_p, state_c, targets, lambda d: d in state_p[0])


@pytest.mark.slow  # a sandbox and followup run --once: ~14 s
def test_salesforce_poison_records_are_rejected_and_the_rest_is_applied(tmp_path: Path) -> None:
    """Interval 10^9 and -5 (API writes); an owner whose TimeZoneSidKey zoneinfo does not know (seeded)."""
    dataset = generate(SEED, DEALS, datetime.now(UTC))
    open_deals = _open_deals(dataset)
    odd_owner = open_deals[0].owner_id
    owners = tuple(
        dataclasses.replace(o, time_zone=UNKNOWN_ZONE) if o.id == odd_owner else o for o in dataset.owners
    )
    dataset = dataclasses.replace(dataset, owners=owners)  # a restricted picklist: seeded, not written
    targets = [sf_id("006", d.id) for d in open_deals[1:3]]
    poisons = {
        targets[0]: {"Followup_Agreed_Interval_Days__c": 1_000_000_000},
        targets[1]: {"Followup_Agreed_Interval_Days__c": -5},
    }
    with salesforce(dataset) as world:
        poisoned, clean, state_p, state_c = poisoned_and_clean(world, tmp_path, poisons, [])
    assert (poisoned.code, clean.code) == (0, 0)
    assert_rejected(
        poisoned,
        {
            targets[0]: ("Followup_Agreed_Interval_Days__c", "out_of_range"),
            targets[1]: ("Followup_Agreed_Interval_Days__c", "out_of_range"),
        },
    )
    warned = poisoned.events("owner_time_zone_unknown")
    assert [(w["owner_id"], w["time_zone"]) for w in warned] == [(sf_id("005", odd_owner), UNKNOWN_ZONE)]
    odd_deals = {sf_id("006", d.id) for d in open_deals if d.owner_id == odd_owner} - set(targets)
    assert odd_deals  # the owner has deals besides the poisoned ones, and none of them is rejected
    assert not odd_deals & {e["record_id"] for e in poisoned.events("record_rejected")}
    assert_same_for_the_others(state_p, state_c, targets, lambda d: d in state_p[0])


def test_hubspot_mapping_that_names_a_deleted_property_blocks_the_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A settings mapping naming a property the portal does not have: exit 1, the property named, nothing
    written, the account blocked (as Salesforce does with INVALID_FIELD)."""
    dataset = generate(SEED, 10, datetime.now(UTC))
    with hubspot(dataset, monkeypatch) as world:
        section = world.section + "      deal_properties: {agreed_interval_days: followup_interval_old}\n"
        run = run_followup(tmp_path, section)
        tasks = world.state()[1]
    assert run.code == 1
    (blocked,) = run.events("account_needs_configuration")
    assert "followup_interval_old" in blocked["error"]
    assert run.events("cycle_finished")[0]["status"] == "fix_configuration"
    assert not tasks
    store = StateStore(run.store_url)
    try:
        block = store.blocked("poison")
        assert block is not None
        assert "followup_interval_old" in block.reason
    finally:
        store.close()
