"""One policy, both CRMs: the same dataset served by both sandboxes yields the same decisions.

The dataset (``crm_sandbox.dataset``) is rendered by each sandbox in its CRM's shapes; each connector maps it
back into the domain model; the planner decides. Decisions are compared in CRM-neutral terms: per dataset
deal, the kinds of the actions and the rules behind them, and the rules that fired. The policy is the
example policy with its stage names written in both CRMs' vocabularies (HubSpot stage ids, Salesforce
StageNames) and without pipeline-scoped overrides (two HubSpot pipelines versus one Salesforce stage list).
Owners get the same time zones on both sides (HubSpot owners have none of their own).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from crm_sandbox.dataset import generate
from crm_sandbox.hubspot import RateLimitConfig, running_hubspot_sandbox
from crm_sandbox.salesforce import running_salesforce_sandbox
from crm_sandbox.salesforce.ids import counter_of

from connectors.hubspot import HubSpotOptions, build_hubspot_connector
from connectors.salesforce import SalesforceOptions, build_salesforce_connector
from connectors.salesforce.options import DEFAULT_ROLES
from policies.loader import load_policy
from policies.model import ContactRole, Deal, Decision, Owner, action_kind
from policies.planner import plan
from tests.clocks import FakeTime

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
# The sandbox org records champions as "Executive Sponsor" (sandbox/README.md); the role mapping is a setting.
ROLES = {**DEFAULT_ROLES, "Executive Sponsor": ContactRole.CHAMPION}
POLICY_DIR = Path(__file__).resolve().parents[2] / "config" / "policies"


def shared_policy(tmp: Path) -> Path:
    """The example policy, written once for both CRMs: stage names in both vocabularies, no pipeline scopes.

    HubSpot names stages by id in two pipelines; Salesforce by StageName in one stage list, which the
    connector calls pipeline ``salesforce`` here. Nurture stage moves are off: HubSpot's default pipeline has
    no nurture stage while Salesforce's single stage list does, a difference of the orgs, not of the CRMs.
    """
    data: dict[str, Any] = yaml.safe_load((POLICY_DIR / "followup.yaml").read_text())
    data["stages"] = {
        "default": {"lost": "closedlost"},
        "enterprise": {"lost": "enterpriselost"},
        "salesforce": {"lost": "Closed Lost"},
    }
    rules = data["defaults"]
    cadence = rules["agreed_interval"].get("cadence_by_stage", {})
    cadence.update(
        {
            "Appointment Scheduled": cadence.get("appointmentscheduled", "3 business days"),
            "Contract Sent": cadence.get("contractsent", "3 business days"),
        }
    )
    rules["decision_maker"]["stages"] = [
        *rules["decision_maker"]["stages"],
        "Decision Maker Bought-In",
        "Contract Sent",
        "Negotiation",
    ]
    rules["nurture"]["move_stage"] = False
    rules["nurture"]["move_stage_back"] = False
    data["overrides"] = [o for o in data.get("overrides", []) if "pipelines" not in o.get("when", {})]
    folder = tmp / "policy"
    folder.mkdir()
    (folder / "followup.yaml").write_text(yaml.safe_dump(data))
    shutil.copy(POLICY_DIR / "texts.yaml", folder / "texts.yaml")
    return folder


def neutral(decision: Decision) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    actions = tuple(sorted((action_kind(a), a.rule_id) for a in decision.actions))
    fired = tuple(sorted(v.rule_id for v in decision.verdicts if v.fired))
    return actions, fired


def decide(policy_path: Path, deals: Mapping[int, Deal], owners: Mapping[str, Owner]) -> dict[int, Any]:
    by_id = {d.id: n for n, d in deals.items()}
    result = plan(load_policy(policy_path), deals.values(), NOW, owners)
    return {by_id[d.deal_id]: neutral(d) for d in result.decisions}


def test_same_dataset_same_decisions_on_hubspot_and_salesforce(tmp_path: Path) -> None:
    """Every deal gets the same actions from the same rules whichever CRM holds it."""
    dataset = generate(21, 80, NOW)
    zones = {str(o.id): o.time_zone for o in dataset.owners}
    policy = shared_policy(tmp_path)
    with running_hubspot_sandbox(dataset=dataset, rate_limits=RateLimitConfig(enabled=False)) as hs:
        hs_token = tmp_path / "hs-token"
        hs_token.write_text(hs.access_token)
        options = HubSpotOptions.model_validate(
            {"host": hs.base_url, "access_token_file": str(hs_token), "activity_lookback_days": 3650}
        )
        hubspot = build_hubspot_connector(options, **FakeTime(NOW).clocks())
        directory = hubspot.read_directory()
        hs_deals = {int(d.id): d for b in hubspot.pull_changes(directory, None) for d in b.deals}
        hs_owners = {i: Owner(id=i, name=o.name, time_zone=zones.get(i)) for i, o in directory.owners.items()}
        hubspot.close()
    with running_salesforce_sandbox(dataset=dataset, now=NOW) as box:
        token = tmp_path / "token"
        token.write_text(box.org.issue_token())
        sf_options = SalesforceOptions.model_validate(
            {
                "instance_url": box.instance_url,
                "ca_file": str(box.ca_file),
                "auth": {"kind": "access_token", "access_token_file": str(token)},
                "pipeline_id": "salesforce",
                "contact_roles": ROLES,
            }
        )
        salesforce = build_salesforce_connector(sf_options, **FakeTime(NOW).clocks())
        sf_directory = salesforce.read_directory()
        sf_deals = {counter_of(d.id): d for b in salesforce.pull_changes(sf_directory, None) for d in b.deals}
        salesforce.close()
    assert hs_deals.keys() == sf_deals.keys()
    hs_decisions = decide(policy, hs_deals, hs_owners)
    sf_decisions = decide(policy, sf_deals, dict(sf_directory.owners))
    differing = {
        n: (hs_decisions[n], sf_decisions[n]) for n in hs_decisions if hs_decisions[n] != sf_decisions[n]
    }
    assert differing == {}
    assert any(actions for actions, _ in hs_decisions.values())  # the comparison is not vacuous
