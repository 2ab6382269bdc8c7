"""crm-followup's tasks read back through simple-salesforce, exactly as Salesforce stores and shows them.

Used by ``followup demo`` to show what a rep sees: our tasks carry their key in ``Followup_Key__c``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import requests
from simple_salesforce.api import Salesforce

from connectors.base import TaskView

_SOQL = "SELECT Subject, Description, ActivityDate, OwnerId FROM Task WHERE Followup_Key__c != null"


def recent_followup_tasks(
    instance_url: str, ca_file: Path | str, access_token: str, limit: int
) -> list[TaskView]:
    """The last ``limit`` tasks crm-followup created (newest first)."""
    session = requests.Session()
    session.verify = str(ca_file)
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
    try:
        sf = Salesforce(instance_url=instance_url, session_id=access_token, session=session)
        rows = sf.query(f"{_SOQL} ORDER BY CreatedDate DESC LIMIT {int(limit)}", timeout=30)["records"]
    finally:
        session.close()
    return [
        TaskView(
            row.get("Subject") or "",
            date.fromisoformat(row["ActivityDate"]) if row.get("ActivityDate") else None,
            row.get("OwnerId"),
            row.get("Description") or "",
        )
        for row in rows
    ]
