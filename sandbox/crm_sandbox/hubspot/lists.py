"""Lists v3 ("segments"): MANUAL lists with memberships, as crm-followup's nurture containers use them.

Only MANUAL and SNAPSHOT lists take membership writes (DYNAMIC ones answer 400, their members come from
filters the sandbox does not evaluate). Names are unique among live lists (409 otherwise). Deleted lists stay
readable by id with ``deletedAt`` and drop out of search, as the reference reports.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from crm_sandbox.hubspot.errors import HubSpotError
from crm_sandbox.hubspot.render import iso_ms

__all__ = ["ListStore", "ManualList"]

PROCESSING_TYPES = frozenset({"MANUAL", "SNAPSHOT", "DYNAMIC"})


@dataclass(slots=True)
class ManualList:
    list_id: int
    name: str
    object_type_id: str
    processing_type: str
    created_ms: int
    updated_ms: int
    version: int = 1
    deleted_ms: int | None = None
    members: dict[int, int] = field(default_factory=dict)  # record id -> joined at (ms), in join order

    def to_json(self, *, with_size: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "listId": str(self.list_id),
            "listVersion": self.version,
            "name": self.name,
            "objectTypeId": self.object_type_id,
            "processingType": self.processing_type,
            "processingStatus": "COMPLETE",
            "createdAt": iso_ms(self.created_ms),
            "updatedAt": iso_ms(self.updated_ms),
            "filtersUpdatedAt": iso_ms(self.created_ms),
            "createdById": "1",
            "updatedById": "1",
        }
        if with_size:
            body["size"] = len(self.members)
        if self.deleted_ms is not None:
            body["deletedAt"] = iso_ms(self.deleted_ms)
        return body


class ListStore:
    """All lists of the portal."""

    def __init__(self) -> None:
        self.lists: dict[int, ManualList] = {}
        self.next_id = 1

    def create(self, name: str, object_type_id: str, processing_type: str, now_ms: int) -> ManualList:
        if processing_type not in PROCESSING_TYPES:
            raise HubSpotError(400, "VALIDATION_ERROR", f"Invalid processingType {processing_type!r}")
        if self.by_name(name, object_type_id=None) is not None:
            raise HubSpotError(
                409,
                "CONFLICT",
                f"A list named '{name}' already exists.",
                subCategory="ILS.DUPLICATE_LIST_NAMES",
            )
        created = ManualList(self.next_id, name, object_type_id, processing_type, now_ms, now_ms)
        self.lists[created.list_id] = created
        self.next_id += 1
        return created

    def get(self, list_id: str) -> ManualList:
        found = self.lists.get(int(list_id)) if list_id.isdigit() else None
        if found is None:
            raise HubSpotError(404, "OBJECT_NOT_FOUND", f"List with id {list_id} does not exist.")
        return found

    def by_name(self, name: str, object_type_id: str | None) -> ManualList | None:
        for candidate in self.lists.values():
            same_type = object_type_id is None or candidate.object_type_id == object_type_id
            if candidate.deleted_ms is None and same_type and candidate.name.lower() == name.lower():
                return candidate
        return None

    def search(self, query: str, processing_types: list[str] | None) -> list[ManualList]:
        needle = query.lower()
        return [
            found
            for found in self.lists.values()
            if found.deleted_ms is None
            and needle in found.name.lower()
            and (not processing_types or found.processing_type in processing_types)
        ]

    def change(
        self, target: ManualList, add: list[int], remove: list[int], now_ms: int
    ) -> tuple[list[int], list[int]]:
        """Add then remove members; returns (added, removed), skipping existing members and non-members."""
        if target.processing_type == "DYNAMIC":
            raise HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"List {target.list_id} is a DYNAMIC list; its memberships cannot be changed.",
            )
        added = [i for i in dict.fromkeys(add) if i not in target.members]
        for record_id in added:
            target.members[record_id] = now_ms
        removed = [i for i in dict.fromkeys(remove) if target.members.pop(i, None) is not None]
        if added or removed:
            target.updated_ms = now_ms
        return added, removed

    def snapshot(self) -> dict[str, Any]:
        return {"lists": copy.deepcopy(self.lists), "next_id": self.next_id}

    def restore(self, state: dict[str, Any]) -> None:
        self.lists = copy.deepcopy(state["lists"])
        self.next_id = state["next_id"]
