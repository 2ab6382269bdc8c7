"""crm-followup's tasks read back through hubspot-api-client, exactly as HubSpot stores and shows them.

Used by ``followup demo`` to show what a rep sees. It lists tasks page by page and keeps ours (found by the
key line in the body, see docs/crm-fields.md): fine for a demo portal, not meant for a 100,000-task one.
"""

from __future__ import annotations

import html
import re
from datetime import datetime

from hubspot import HubSpot

from connectors.base import TaskView

_PROPERTIES = ["hs_task_subject", "hs_task_body", "hs_timestamp", "hubspot_owner_id"]
KEY_LINE = "crm-followup key:"


def recent_followup_tasks(host: str, access_token: str, limit: int) -> list[TaskView]:
    """The last ``limit`` tasks crm-followup created, with their bodies as plain text."""
    api = HubSpot(access_token=access_token, host=host)
    found: list[TaskView] = []
    after = None
    while True:
        page = api.crm.objects.tasks.basic_api.get_page(limit=100, after=after, properties=_PROPERTIES)
        for task in page.results:
            props = task.properties
            body = props.get("hs_task_body") or ""
            if KEY_LINE not in body:
                continue
            stamp = props.get("hs_timestamp")
            due = datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else None
            found.append(
                TaskView(props.get("hs_task_subject") or "", due, props.get("hubspot_owner_id"), plain(body))
            )
        if page.paging is None or page.paging.next is None:
            return found[-limit:]
        after = page.paging.next.after


def plain(body: str) -> str:
    """HubSpot task bodies are HTML; this is the text a rep reads."""
    text = re.sub(r"<br\s*/?>|</p>|</li>", "\n", body)
    text = re.sub(r"<li>", "• ", text)
    return html.unescape(re.sub(r"<[^>]+>", "", text))
