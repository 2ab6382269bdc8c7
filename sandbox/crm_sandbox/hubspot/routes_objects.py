"""CRM objects v3, one record at a time, and search: ``/crm/v3/objects/{objectType}[/{id}|/search]``.

Status codes as hubspot-api-client 12 maps them: 200 list/get/update, 201 create, 204 archive, 200 search.
Inline ``associations`` on create are validated before anything is written, so a bad association leaves
no half-created record behind.
"""

from __future__ import annotations

from typing import Any

from crm_sandbox.hubspot.errors import HubSpotError
from crm_sandbox.hubspot.http import (
    body_json,
    handler,
    int_param,
    list_param,
    object_type,
    ok,
    record_json,
    records_json,
    truthy,
)
from crm_sandbox.hubspot.records import Record
from crm_sandbox.hubspot.search_query import compile_query
from crm_sandbox.hubspot.store import HubSpotStore
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["object_routes", "parse_inline_associations"]

SEARCH_MAX_LIMIT = 200
SEARCH_RESULT_CAP = 10_000
LIST_MAX_LIMIT = 100


def parse_inline_associations(store: HubSpotStore, kind: str, raw: Any) -> list[tuple[str, int, list[int]]]:
    """Inline ``associations`` of a create -> [(to type, to id, type ids)], validated, nothing written."""
    if not raw:
        return []
    if not isinstance(raw, list):
        raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON: associations must be a list")
    parsed: list[tuple[str, int, list[int]]] = []
    for item in raw:
        to_id = str((item.get("to") or {}).get("id", "")) if isinstance(item, dict) else ""
        types = item.get("types") if isinstance(item, dict) else None
        if not to_id.isdigit() or not isinstance(types, list) or not types:
            raise HubSpotError(
                400, "VALIDATION_ERROR", "Invalid input JSON: each association needs to.id and types"
            )
        type_ids: list[int] = []
        to_kind: str | None = None
        for spec in types:
            type_id = spec.get("associationTypeId") if isinstance(spec, dict) else None
            definition = store.associations.types.get(type_id) if isinstance(type_id, int) else None
            if (
                definition is None
                or definition.from_type != kind
                or (to_kind and definition.to_type != to_kind)
            ):
                raise HubSpotError(
                    400,
                    "VALIDATION_ERROR",
                    f"{type_id} is not a valid association type id for {kind}",
                    subCategory="crm.associations.INVALID_ASSOCIATION_TYPE",
                )
            to_kind = definition.to_type
            type_ids.append(definition.type_id)
        assert to_kind is not None
        if store.tables[to_kind].get(int(to_id)) is None:
            raise HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"One or more associations are invalid: {to_kind} {to_id} does not exist",
                subCategory="crm.associations.INVALID_OBJECT_IDS",
                context={"ids": [to_id]},
            )
        parsed.append((to_kind, int(to_id), type_ids))
    return parsed


def create_with_associations(store: HubSpotStore, kind: str, item: Any) -> Record:
    if not isinstance(item, dict):
        raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON: expected an object")
    links = parse_inline_associations(store, kind, item.get("associations"))
    record = store.create(kind, item.get("properties") or {})
    for to_kind, to_id, type_ids in links:
        store.associate(kind, record.id, to_kind, to_id, type_ids)
    return record


def object_routes(store: HubSpotStore) -> list[Route]:
    """The routes, bound to ``store``."""

    @handler
    async def get_page(request: Request) -> Response:
        kind = object_type(request)
        limit = int_param(request, "limit", 10, LIST_MAX_LIMIT)
        after_raw = request.query_params.get("after", "")
        after = int(after_raw) if after_raw.isdigit() else 0
        records, next_after = store.tables[kind].page(after, limit, archived=truthy(request, "archived"))
        names, history, assoc = _read_params(request)
        body: dict[str, Any] = {
            "results": [
                record_json(store, kind, r, names, history=history, associations=assoc) for r in records
            ]
        }
        if next_after is not None:
            body["paging"] = {"next": {"after": str(next_after), "link": f"?after={next_after}"}}
        return ok(body)

    @handler
    async def get_by_id(request: Request) -> Response:
        kind = object_type(request)
        record = store.find(
            kind,
            str(request.path_params["objectId"]),
            archived=truthy(request, "archived"),
            id_property=request.query_params.get("idProperty"),
        )
        names, history, assoc = _read_params(request)
        return ok(record_json(store, kind, record, names, history=history, associations=assoc))

    @handler
    async def create(request: Request) -> Response:
        kind = object_type(request)
        body = await body_json(request)
        record = create_with_associations(store, kind, body)
        given = list((body or {}).get("properties") or {})
        return ok(record_json(store, kind, record, given, always=_system(store, kind)), 201)

    @handler
    async def update(request: Request) -> Response:
        kind = object_type(request)
        record = store.find(
            kind, str(request.path_params["objectId"]), id_property=request.query_params.get("idProperty")
        )
        body = await body_json(request)
        if not isinstance(body, dict):
            raise HubSpotError(400, "VALIDATION_ERROR", 'Invalid input JSON: expected {"properties": {...}}')
        record = store.update(kind, record, body.get("properties") or {})
        given = list(body.get("properties") or {})
        return ok(record_json(store, kind, record, given, always=_system(store, kind)))

    @handler
    async def archive(request: Request) -> Response:
        kind = object_type(request)
        raw_id = str(request.path_params["objectId"])
        record = store.tables[kind].records.get(int(raw_id)) if raw_id.isdigit() else None
        if record is not None:
            store.archive(kind, record)
        return Response(status_code=204)

    @handler
    async def search(request: Request) -> Response:
        kind = object_type(request)
        body = await body_json(request) or {}
        if not isinstance(body, dict):
            raise HubSpotError(
                400, "VALIDATION_ERROR", "Invalid input JSON: expected a search request object"
            )
        limit = body.get("limit", 10)
        if not isinstance(limit, int) or limit < 0 or limit > SEARCH_MAX_LIMIT:
            raise HubSpotError(
                400, "VALIDATION_ERROR", f"Invalid limit: {limit}. The maximum limit is {SEARCH_MAX_LIMIT}."
            )
        after_raw = str(body.get("after", "0") or "0")
        if not after_raw.isdigit():
            raise HubSpotError(400, "VALIDATION_ERROR", f"Invalid after value: {after_raw}")
        offset = int(after_raw)
        if offset >= SEARCH_RESULT_CAP:
            raise HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"The search results are limited to {SEARCH_RESULT_CAP} records. "
                "Narrow your search with filters instead of paging further.",
            )
        query = compile_query(body, lambda name: store.property_type(kind, name))
        page_limit = min(limit, SEARCH_RESULT_CAP - offset)
        total, records = store.indexes[kind].run(query, offset, page_limit, store.search_visible())
        names = body.get("properties") if isinstance(body.get("properties"), list) else None
        result: dict[str, Any] = {
            "total": total,
            "results": records_json(store, kind, records, names, always=_system(store, kind)),
        }
        if offset + len(records) < total and records:
            result["paging"] = {"next": {"after": str(offset + len(records)), "link": None}}
        return ok(result)

    base = "/crm/v3/objects/{objectType}"
    return [
        Route(f"{base}/search", search, methods=["POST"]),
        Route(base, get_page, methods=["GET"]),
        Route(f"{base}/", get_page, methods=["GET"]),
        Route(base, create, methods=["POST"]),
        Route(f"{base}/", create, methods=["POST"]),
        Route(base + "/{objectId}", get_by_id, methods=["GET"]),
        Route(base + "/{objectId}", update, methods=["PATCH"]),
        Route(base + "/{objectId}", archive, methods=["DELETE"]),
    ]


def _system(store: HubSpotStore, kind: str) -> tuple[str, ...]:
    table = store.tables[kind]
    return ("hs_object_id", table.created_property, table.modified_property)


def _read_params(request: Request) -> tuple[list[str] | None, list[str] | None, list[str] | None]:
    return (
        list_param(request, "properties") or None,
        list_param(request, "propertiesWithHistory") or None,
        list_param(request, "associations") or None,
    )
