"""The contact lists nurture enrolment uses: MANUAL lists of contacts, found and created by name, for
``followup setup hubspot`` (setup.py) and the writer (write.py) alike
(https://developers.hubspot.com/docs/api/crm/lists)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.hubspot.client import HubSpotClient

CONTACTS_OBJECT_TYPE_ID = "0-1"


def find_list(client: HubSpotClient, name: str) -> Mapping[str, Any] | None:
    """The contact list called ``name`` (``listId``, ``processingType``, ...), or None when there is none."""
    response = client.send(
        "lists.get_by_name", "lists", "get_by_name", name, CONTACTS_OBJECT_TYPE_ID, missing_ok=True
    )
    if response.status == 404:  # no such list yet: expected, it is created when needed
        return None
    found = (response.body or {}).get("list")
    return found if isinstance(found, Mapping) else None


def manual_list_request(name: str) -> dict[str, Any]:
    """The body of ``lists.create`` for a MANUAL contact list called ``name``."""
    return {"name": name, "objectTypeId": CONTACTS_OBJECT_TYPE_ID, "processingType": "MANUAL"}
