"""Lists v3: create (200, not 201), fetch by id or name, search, delete/restore, and memberships.

Membership changes answer ``{"recordsIdsAdded", "recordIdsRemoved", "recordIdsMissing"}`` (HubSpot's own
spelling of the first); ids that are not records of the list's object type are reported missing and ignored.
Membership pages are ordered by record id (``/join-order`` by join time), up to 250 per page.
"""

from __future__ import annotations

from typing import Any

from crm_sandbox.hubspot.catalog import resolve_object_type
from crm_sandbox.hubspot.errors import HubSpotError
from crm_sandbox.hubspot.http import body_json, handler, int_param, list_param, ok
from crm_sandbox.hubspot.lists import ManualList
from crm_sandbox.hubspot.render import iso_ms
from crm_sandbox.hubspot.store import HubSpotStore
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

__all__ = ["list_routes"]


def list_routes(store: HubSpotStore) -> list[BaseRoute]:
    """The routes, bound to ``store``."""
    lists = store.lists

    def split_ids(target: ManualList, raw: Any) -> tuple[list[int], list[str]]:
        if not isinstance(raw, list):
            raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON: expected an array of record ids")
        kind = resolve_object_type(target.object_type_id)
        table = store.tables[kind] if kind is not None else None
        present, missing = [], []
        for item in raw:
            text = str(item)
            if table is not None and text.isdigit() and table.get(int(text)) is not None:
                present.append(int(text))
            else:
                missing.append(text)
        return present, missing

    def change_body(added: list[int], removed: list[int], missing: list[str]) -> dict[str, Any]:
        return {
            "recordsIdsAdded": [str(i) for i in added],
            "recordIdsRemoved": [str(i) for i in removed],
            "recordIdsMissing": missing,
        }

    @handler
    async def create(request: Request) -> Response:
        body = await body_json(request)
        if not isinstance(body, dict) or not body.get("name") or not body.get("objectTypeId"):
            raise HubSpotError(400, "VALIDATION_ERROR", "A list needs name, objectTypeId and processingType")
        kind = resolve_object_type(str(body["objectTypeId"]))
        if kind is None:
            raise HubSpotError(400, "VALIDATION_ERROR", f"Unknown objectTypeId {body['objectTypeId']}")
        created = lists.create(
            str(body["name"]),
            str(body["objectTypeId"]),
            str(body.get("processingType", "MANUAL")),
            store.now_ms(),
        )
        return ok({"list": created.to_json()})

    @handler
    async def get_all(request: Request) -> Response:
        ids = list_param(request, "listIds")
        chosen = [lists.lists[int(i)] for i in ids if i.isdigit() and int(i) in lists.lists]
        return ok({"lists": [found.to_json() for found in chosen if found.deleted_ms is None]})

    @handler
    async def get_by_id(request: Request) -> Response:
        return ok({"list": lists.get(str(request.path_params["listId"])).to_json()})

    @handler
    async def get_by_name(request: Request) -> Response:
        found = lists.by_name(str(request.path_params["listName"]), str(request.path_params["objectTypeId"]))
        if found is None:
            raise HubSpotError(
                404, "OBJECT_NOT_FOUND", f"List with name {request.path_params['listName']} does not exist."
            )
        return ok({"list": found.to_json()})

    @handler
    async def search(request: Request) -> Response:
        body = await body_json(request) or {}
        count = body.get("count", 20)
        if not isinstance(count, int) or not 0 < count <= 500:
            raise HubSpotError(400, "VALIDATION_ERROR", "count must be between 1 and 500")
        offset = int(body.get("offset", 0) or 0)
        found = lists.search(str(body.get("query") or ""), body.get("processingTypes"))
        page = found[offset : offset + count]
        results = [
            {**f.to_json(with_size=False), "additionalProperties": {"hs_list_size": str(len(f.members))}}
            for f in page
        ]
        return ok(
            {
                "lists": results,
                "hasMore": offset + count < len(found),
                "offset": offset + len(page),
                "total": len(found),
            }
        )

    @handler
    async def remove(request: Request) -> Response:
        target = lists.get(str(request.path_params["listId"]))
        target.deleted_ms = target.deleted_ms or store.now_ms()
        return Response(status_code=204)

    @handler
    async def restore(request: Request) -> Response:
        target = lists.get(str(request.path_params["listId"]))
        target.deleted_ms = None
        return Response(status_code=204)

    @handler
    async def add(request: Request) -> Response:
        target = lists.get(str(request.path_params["listId"]))
        present, missing = split_ids(target, await body_json(request))
        added, _ = lists.change(target, present, [], store.now_ms())
        return ok(change_body(added, [], missing))

    @handler
    async def remove_members(request: Request) -> Response:
        target = lists.get(str(request.path_params["listId"]))
        present, missing = split_ids(target, await body_json(request))
        _, removed = lists.change(target, [], present, store.now_ms())
        return ok(change_body([], removed, missing))

    @handler
    async def add_and_remove(request: Request) -> Response:
        target = lists.get(str(request.path_params["listId"]))
        body = await body_json(request)
        if not isinstance(body, dict):
            raise HubSpotError(400, "VALIDATION_ERROR", "Expected {recordIdsToAdd, recordIdsToRemove}")
        to_add, missing_add = split_ids(target, body.get("recordIdsToAdd") or [])
        to_remove, missing_remove = split_ids(target, body.get("recordIdsToRemove") or [])
        added, removed = lists.change(target, to_add, to_remove, store.now_ms())
        return ok(change_body(added, removed, missing_add + missing_remove))

    @handler
    async def remove_all(request: Request) -> Response:
        target = lists.get(str(request.path_params["listId"]))
        lists.change(target, [], list(target.members), store.now_ms())
        return Response(status_code=204)

    def members_page(request: Request, ordered: list[tuple[int, int]]) -> Response:
        limit = int_param(request, "limit", 100, 250)
        after = request.query_params.get("after")
        start = int(after) if after and after.isdigit() else 0
        chosen = ordered[start : start + limit]
        body: dict[str, Any] = {
            "results": [{"recordId": str(i), "membershipTimestamp": iso_ms(t)} for i, t in chosen],
            "total": len(ordered),
        }
        if start + limit < len(ordered):
            body["paging"] = {"next": {"after": str(start + limit), "link": None}}
        return ok(body)

    @handler
    async def memberships(request: Request) -> Response:
        target = lists.get(str(request.path_params["listId"]))
        return members_page(request, sorted(target.members.items()))

    @handler
    async def memberships_join_order(request: Request) -> Response:
        target = lists.get(str(request.path_params["listId"]))
        return members_page(request, list(target.members.items()))

    @handler
    async def record_memberships(request: Request) -> Response:
        record_id = str(request.path_params["recordId"])
        otid = str(request.path_params["objectTypeId"])
        rows = [
            {
                "listId": str(found.list_id),
                "listVersion": found.version,
                "firstAddedTimestamp": iso_ms(found.members[int(record_id)]),
                "lastAddedTimestamp": iso_ms(found.members[int(record_id)]),
            }
            for found in lists.lists.values()
            if found.object_type_id == otid
            and found.deleted_ms is None
            and record_id.isdigit()
            and int(record_id) in found.members
        ]
        return ok({"results": rows, "total": len(rows)})

    one = "/crm/v3/lists/{listId}"
    return [
        Route("/crm/v3/lists/", create, methods=["POST"]),
        Route("/crm/v3/lists", create, methods=["POST"]),
        Route("/crm/v3/lists/", get_all, methods=["GET"]),
        Route("/crm/v3/lists", get_all, methods=["GET"]),
        Route("/crm/v3/lists/search", search, methods=["POST"]),
        Route("/crm/v3/lists/object-type-id/{objectTypeId}/name/{listName}", get_by_name, methods=["GET"]),
        Route(
            "/crm/v3/lists/records/{objectTypeId}/{recordId}/memberships", record_memberships, methods=["GET"]
        ),
        Route(one, get_by_id, methods=["GET"]),
        Route(one, remove, methods=["DELETE"]),
        Route(one + "/restore", restore, methods=["PUT"]),
        Route(one + "/memberships/add", add, methods=["PUT"]),
        Route(one + "/memberships/remove", remove_members, methods=["PUT"]),
        Route(one + "/memberships/add-and-remove", add_and_remove, methods=["PUT"]),
        Route(one + "/memberships/join-order", memberships_join_order, methods=["GET"]),
        Route(one + "/memberships", memberships, methods=["GET"]),
        Route(one + "/memberships", remove_all, methods=["DELETE"]),
    ]
