"""Helpers for contract tests against the Salesforce sandbox: options, a plain simple-salesforce client."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from crm_sandbox.salesforce import SalesforceSandbox
from simple_salesforce.api import Salesforce

from connectors.base import ChangeBatch, Cursor, Directory
from connectors.salesforce import SalesforceConnector, SalesforceOptions, build_salesforce_connector
from policies.model import Deal
from tests.clocks import FakeTime
from tests.sobjects import sobject

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


def options(box: SalesforceSandbox, token_file: Path, **overrides: Any) -> SalesforceOptions:
    """Options for the sandbox: a fixed access token unless ``auth`` is overridden."""
    token_file.write_text(box.org.issue_token())  # fresh: a test may revoke every session
    settings: dict[str, Any] = {
        "instance_url": box.instance_url,
        "login_url": box.instance_url,
        "ca_file": str(box.ca_file),
        "auth": {"kind": "access_token", "access_token_file": str(token_file)},
        "retry": {"attempts": 8, "initial_wait": 0.0, "max_wait": 0.0, "jitter_seed": 3},
    }
    settings.update(overrides)
    return SalesforceOptions.model_validate(settings)


def jwt_auth(box: SalesforceSandbox) -> dict[str, str]:
    return {
        "kind": "jwt_bearer",
        "consumer_key": box.consumer_key,
        "username": box.username,
        "private_key_file": str(box.private_key_file),
    }


OPEN: list[Callable[[], None]] = []  # close() of every connector and client made, for the fixture's teardown


def close_all() -> None:
    while OPEN:
        OPEN.pop()()


def connector(opts: SalesforceOptions) -> SalesforceConnector:
    made = build_salesforce_connector(opts, **FakeTime().clocks())
    OPEN.append(made.close)
    return made


def plain_client(box: SalesforceSandbox) -> Salesforce:
    """simple-salesforce as another integration would use it: for changes made behind our back."""
    session = requests.Session()
    session.verify = str(box.ca_file)
    session.trust_env = False
    OPEN.append(session.close)
    return Salesforce(instance_url=box.instance_url, session_id=box.org.issue_token(), session=session)


def pull_all(conn: SalesforceConnector, directory: Directory, cursor: Cursor | None) -> list[ChangeBatch]:
    return list(conn.pull_changes(directory, cursor))


def deals_by_id(batches: list[ChangeBatch]) -> dict[str, Deal]:
    return {d.id: d for b in batches for d in b.deals}


def count(sf: Salesforce, soql: str) -> int:
    return int(sf.query(soql)["totalSize"])


def ensure_campaign(sf: Salesforce, name: str) -> str:
    """A campaign with the Nurture and Responded member statuses (what setup creates)."""
    found = sf.query(f"SELECT Id FROM Campaign WHERE Name = '{name}'")["records"]
    if found:
        return str(found[0]["Id"])
    campaign_id = str(sobject(sf, "Campaign").create({"Name": name, "IsActive": True})["id"])
    for label, responded in (("Nurture", False), ("Responded", True)):
        existing = sf.query(
            f"SELECT Id FROM CampaignMemberStatus WHERE CampaignId = '{campaign_id}' AND Label = '{label}'"
        )["records"]
        if not existing:
            sobject(sf, "CampaignMemberStatus").create(
                {"CampaignId": campaign_id, "Label": label, "HasResponded": responded, "IsDefault": False}
            )
    return campaign_id
