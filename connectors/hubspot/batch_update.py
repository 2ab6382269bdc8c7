"""One batch update call for deals (write.py) and tasks (write_tasks.py): up to 100 records of one object
type, each with the properties to set (https://developers.hubspot.com/docs/api/crm/deals, batch update)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

from connectors.hubspot.client import HubSpotClient, Response


def batch_update(
    client: HubSpotClient,
    objects: Literal["deals", "tasks"],
    properties: Mapping[str, Mapping[str, str]],
    ids: Iterable[str],
) -> Response:
    """``<objects>.batch_update`` of the records ``ids``, each with its ``properties`` (retried: an update
    is idempotent); the answer's ``results`` carry the records as updated."""
    inputs = [{"id": record_id, "properties": properties[record_id]} for record_id in ids]
    return client.send(
        f"{objects}.batch_update",
        f"{objects}.batch",
        "update",
        batch_input_simple_public_object_batch_input={"inputs": inputs},
    )
