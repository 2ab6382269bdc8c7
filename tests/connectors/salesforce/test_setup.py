"""Tests for ``followup setup salesforce``: field specs, metadata objects, and runs against the sandbox."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from crm_sandbox.salesforce import SalesforceSandbox, running_salesforce_sandbox
from simple_salesforce.api import Salesforce

from cli import main
from connectors.base import SetupNeeds
from connectors.salesforce import SalesforceConnector, SalesforceOptions
from connectors.salesforce.setup import field_specs, metadata_field, org_needs
from tests.connectors.salesforce.fake_transport import ScriptedSalesforce, query_page
from tests.connectors.salesforce.sandbox_helpers import (
    NOW,
    close_all,
    connector,
    count,
    options,
    plain_client,
)

OPTIONS = SalesforceOptions.model_validate(
    {
        "auth": {"kind": "access_token", "access_token_env": "T"},
        "instance_url": "https://org.my.salesforce.com",
    }
)


def test_field_specs_follow_the_documented_names_and_types() -> None:
    """The fields setup creates are those of docs/crm-fields.md, the key as a 40-character External ID."""
    specs = {s.full_name: s for s in field_specs(OPTIONS)}
    key = specs["Activity.Followup_Key__c"]
    assert (key.type, key.length, key.external_id) == ("Text", 40, True)
    assert specs["Opportunity.Followup_Readiness__c"].values == ("ready", "not_now", "unknown")
    assert "Opportunity.NextStep" not in specs  # standard fields are never created
    assert len(specs) == 2 + 10


def test_metadata_objects_build_from_the_bundled_wsdl() -> None:
    """Each spec becomes a zeep CustomField of the Metadata API, offline."""
    session = requests.Session()
    sf = Salesforce(instance_url="https://org.my.salesforce.com", session_id="offline", session=session)
    built = [metadata_field(sf.mdapi, s) for s in field_specs(OPTIONS)]
    picklist = next(b for b in built if b.fullName == "Opportunity.Followup_State__c")
    assert [v.fullName for v in picklist.valueSet.valueSetDefinition.value] == [
        "active",
        "nurture",
        "stopped",
    ]
    assert next(b for b in built if b.fullName == "Activity.Followup_Key__c").externalId is True
    session.close()


def test_policy_stages_of_other_pipelines_are_reported() -> None:
    """Stages named for a pipeline other than the configured one cannot exist in Salesforce."""
    needs = org_needs(
        OPTIONS, SetupNeeds(stages=frozenset({("default", "Closed Lost"), ("enterprise", "x")}))
    )
    assert needs.stages == {"Closed Lost"}
    assert needs.foreign_pipelines == {"enterprise"}


@pytest.fixture(scope="module")
def org() -> Iterator[SalesforceSandbox]:
    with running_salesforce_sandbox(seed=3, deals=20, now=NOW) as running:
        yield running
        close_all()  # before the server stops, so no connection is left open


@pytest.fixture(scope="module")
def bare_org() -> Iterator[SalesforceSandbox]:
    with running_salesforce_sandbox(seed=3, deals=5, now=NOW, bare=True) as running:
        yield running
        close_all()


def test_setup_creates_the_campaign_and_reports_what_a_human_must_do(
    org: SalesforceSandbox, tmp_path: Path
) -> None:
    """Setup creates the nurture campaign with both statuses once, and names the missing stage and field."""
    conn = connector(options(org, tmp_path / "t"))
    needs = SetupNeeds(
        stages=frozenset({("default", "Closed Lost"), ("default", "Parked")}),
        nurture_names=frozenset({"Nurture Q3"}),
        deal_fields=frozenset({"Budget__c"}),
    )
    report = conn.setup(needs, dry_run=False)
    assert "campaign 'Nurture Q3'" in report.created
    assert any("'Nurture'" in c for c in report.created)
    sf = plain_client(org)
    labels = sf.query("SELECT Label FROM CampaignMemberStatus WHERE Campaign.Name = 'Nurture Q3'")["records"]
    assert {"Nurture", "Responded"} <= {r["Label"] for r in labels}
    assert any("'Parked'" in p for p in report.problems)
    assert any("Budget__c" in p for p in report.problems)
    assert "field Activity.Followup_Key__c" in report.ok
    again = conn.setup(needs, dry_run=False)
    assert again.created == []
    assert count(sf, "SELECT Id FROM Campaign WHERE Name = 'Nurture Q3'") == 1


def test_dry_run_on_a_bare_org_plans_every_field_and_creates_nothing(
    bare_org: SalesforceSandbox, tmp_path: Path
) -> None:
    """On an org without crm-followup's fields a dry run lists them all and writes nothing."""
    conn = connector(options(bare_org, tmp_path / "t"))
    needs = SetupNeeds(nurture_names=frozenset({"Nurture Q3"}))
    report = conn.setup(needs, dry_run=True)
    planned = " ".join(report.created)
    assert "Activity.Followup_Key__c (Text)" in planned
    assert "Opportunity.Followup_State__c (Picklist)" in planned
    assert "would create campaign 'Nurture Q3'" in planned
    assert count(plain_client(bare_org), "SELECT Id FROM Campaign") == 0
    assert set(conn.usage().calls_by_endpoint) <= {
        "describe",
        "sobjects/Opportunity",
        "sobjects/Task",
        "query",
    }


def test_setup_creates_fields_through_the_metadata_api_once(
    bare_org: SalesforceSandbox, tmp_path: Path
) -> None:
    """On a bare org setup creates every field via the Metadata API; a second run finds them all."""
    conn = connector(options(bare_org, tmp_path / "t"))
    nothing = SetupNeeds()
    first = conn.setup(nothing, dry_run=False)
    assert first.problems == []
    assert "Activity.Followup_Key__c (Text)" in first.created[0]
    assert conn.usage().calls_by_endpoint["metadata"] >= 2  # fields in batches of 10, then the permission set
    second = conn.setup(nothing, dry_run=False)
    assert (second.created, second.problems) == ([], [])
    assert "field Opportunity.Followup_State__c" in second.ok


def test_field_creation_failure_says_what_to_create_by_hand(
    make_connector: Callable[..., SalesforceConnector], scripted: ScriptedSalesforce
) -> None:
    """When the Metadata API refuses, setup names each field, its type and the access to grant."""
    scripted.on("GET", "/services/data/v62.0/sobjects/", lambda r: (200, {"fields": []}))
    scripted.on("GET", "/services/data/v62.0/query/", lambda r: (200, query_page([])))
    scripted.on("POST", "/services/Soap/m/", lambda r: (500, None))
    conn = make_connector()
    report = conn.setup(SetupNeeds(), dry_run=False)
    (problem,) = report.problems
    assert "Activity.Followup_Key__c (Text)" in problem
    assert "field-level security" in problem


def test_cli_dry_run_reports_and_exits_nonzero_on_problems(org: SalesforceSandbox, tmp_path: Path) -> None:
    """``followup setup salesforce --dry-run`` prints the plan and exits 1 when a human must act."""
    token = tmp_path / "token"
    token.write_text(org.org.issue_token())
    policy = Path(__file__).resolve().parents[3] / "config" / "policies"
    result = CliRunner().invoke(
        main,
        [
            "setup",
            "salesforce",
            "--instance-url",
            org.instance_url,
            "--ca-file",
            str(org.ca_file),
            "--token-file",
            str(token),
            "--policy",
            str(policy),
            "--dry-run",
        ],
    )
    assert result.exit_code == 1
    assert "pipeline 'enterprise'" in result.output
    assert "Salesforce API calls (dry run: nothing created)" in result.output


def test_setup_checks_the_stage_names_the_policy_ids_map_to() -> None:
    """Setup looks for the org's StageName behind each policy stage id of the stage map."""
    options = OPTIONS.model_copy(update={"stage_ids": {"Closed Lost": "closedlost"}})
    needs = org_needs(options, SetupNeeds(stages=frozenset({("default", "closedlost")})))
    assert needs.stages == {"Closed Lost"}
