"""CRM objects v3 batch endpoints: ``/crm/v3/objects/{objectType}/batch/{read,create,update,upsert,archive}``.

At most 100 inputs per call (400 beyond). Invalid property values fail the whole batch with 400, as HubSpot
validates a batch before writing it; ids that do not exist give 207 with an ``OBJECT_NOT_FOUND`` error
listing them, and the found ones are still read or written. Create answers 201, archive 204.
"""

from __future__ import annotations

from typing import Any

from crm_sandbox.hubspot.catalog import SINGULAR
from crm_sandbox.hubspot.errors import HubSpotError, error_body
from crm_sandbox.hubspot.http import (
    body_json,
    handler,
    now_iso,
    object_type,
    ok,
    record_json,
    records_json,
    truthy,
)
from crm_sandbox.hubspot.records import Record
from crm_sandbox.hubspot.routes_objects import create_with_associations
from crm_sandbox.hubspot.store import HubSpotStore
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["batch_routes"]

BATCH_MAX = 100


def _inputs(body: Any) -> list[Any]:
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list):
        raise HubSpotError(400, "VALIDATION_ERROR", 'Invalid input JSON: expected {"inputs": [...]}')
    if len(inputs) > BATCH_MAX:
        raise HubSpotError(
            400,
            "VALIDATION_ERROR",
            f"Too many inputs: {len(inputs)}. Batch requests are limited to {BATCH_MAX} inputs.",
            context={"inputs": [f"size must be between 0 and {BATCH_MAX}"]},
        )
    return inputs


def _input_id(item: Any) -> str:
    return str(item.get("id", "")) if isinstance(item, dict) else ""


def _batch_body(
    store: HubSpotStore, results: list[dict[str, Any]], started: str, missing: list[str], kind: str, verb: str
) -> tuple[dict[str, Any], bool]:
    body: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": started,
        "completedAt": now_iso(store),
    }
    if not missing:
        return body, False
    body["numErrors"] = 1
    body["errors"] = [
        error_body(
            "OBJECT_NOT_FOUND",
            f"Could not {verb} some {SINGULAR[kind].upper()} objects, they may be deleted or not exist. "
            "Check that ids are valid.",
            context={"ids": missing},
        )
    ]
    del body["errors"][0]["correlationId"]
    return body, True


def batch_routes(store: HubSpotStore) -> list[Route]:
    """The routes, bound to ``store``."""

    def _find(kind: str, raw_id: str, id_property: str | None, archived: bool = False) -> Record | None:
        try:
            return store.find(kind, raw_id, archived=archived, id_property=id_property)
        except HubSpotError:
            return None

    @handler
    async def read(request: Request) -> Response:
        kind = object_type(request)
        started = now_iso(store)
        body = await body_json(request)
        inputs = _inputs(body)
        names = body.get("properties") or None
        history = body.get("propertiesWithHistory") or None
        id_property = body.get("idProperty")
        archived = truthy(request, "archived")
        found: list[Record] = []
        missing: list[str] = []
        seen: set[str] = set()
        records = store.tables[kind].records
        for item in inputs:
            raw_id = _input_id(item)
            if raw_id in seen:
                continue
            seen.add(raw_id)
            if id_property or not raw_id.isdigit():
                record = _find(kind, raw_id, id_property, archived)
            else:
                record = records.get(int(raw_id))
                record = record if record is not None and record.archived == archived else None
            if record is None:
                missing.append(raw_id)
            else:
                found.append(record)
        if history:
            results = [record_json(store, kind, r, names, history=history) for r in found]
        else:
            results = records_json(store, kind, found, names)
        payload, partial = _batch_body(store, results, started, missing, kind, "get")
        return ok(payload, 207 if partial else 200)

    @handler
    async def create(request: Request) -> Response:
        kind = object_type(request)
        started = now_iso(store)
        inputs = _inputs(await body_json(request))
        snapshot_ids = store.tables[kind].next_id
        results = []
        try:
            for item in inputs:
                record = create_with_associations(store, kind, item)
                result = record_json(store, kind, record, list(item.get("properties") or {}))
                if isinstance(item, dict) and item.get("objectWriteTraceId") is not None:
                    result["objectWriteTraceId"] = str(item["objectWriteTraceId"])
                results.append(result)
        except HubSpotError:
            _undo_creates(store, kind, snapshot_ids)
            raise
        payload, _ = _batch_body(store, results, started, [], kind, "create")
        return ok(payload, 201)

    @handler
    async def update(request: Request) -> Response:
        kind = object_type(request)
        started = now_iso(store)
        inputs = _inputs(await body_json(request))
        found: list[tuple[Record, dict[str, Any], Any]] = []
        missing: list[str] = []
        for item in inputs:
            record = _find(kind, _input_id(item), item.get("idProperty") if isinstance(item, dict) else None)
            if record is None:
                missing.append(_input_id(item))
            else:
                found.append((record, item.get("properties") or {}, item.get("objectWriteTraceId")))
        for _record, props, _trace in found:
            store.validate(kind, props)
        results = []
        for record, props, trace in found:
            record = store.update(kind, record, props)
            result = record_json(store, kind, record, list(props))
            if trace is not None:
                result["objectWriteTraceId"] = str(trace)
            results.append(result)
        payload, partial = _batch_body(store, results, started, missing, kind, "update")
        return ok(payload, 207 if partial else 200)

    @handler
    async def upsert(request: Request) -> Response:
        kind = object_type(request)
        started = now_iso(store)
        inputs = _inputs(await body_json(request))
        results = []
        for item in inputs:
            id_property = item.get("idProperty") if isinstance(item, dict) else None
            if not id_property:
                raise HubSpotError(
                    400, "VALIDATION_ERROR", "Upsert inputs need idProperty (a unique property)"
                )
            props = dict(item.get("properties") or {})
            record = _find(kind, _input_id(item), id_property)
            created = record is None
            if record is None:
                props.setdefault(id_property, _input_id(item))
                record = store.create(kind, props)
            else:
                record = store.update(kind, record, props)
            result = record_json(store, kind, record, list(props))
            result["new"] = created
            results.append(result)
        payload, _ = _batch_body(store, results, started, [], kind, "upsert")
        return ok(payload)

    @handler
    async def archive(request: Request) -> Response:
        kind = object_type(request)
        for item in _inputs(await body_json(request)):
            record = _find(kind, _input_id(item), None)
            if record is not None:
                store.archive(kind, record)
        return Response(status_code=204)

    base = "/crm/v3/objects/{objectType}/batch"
    return [
        Route(f"{base}/read", read, methods=["POST"]),
        Route(f"{base}/create", create, methods=["POST"]),
        Route(f"{base}/update", update, methods=["POST"]),
        Route(f"{base}/upsert", upsert, methods=["POST"]),
        Route(f"{base}/archive", archive, methods=["POST"]),
    ]


def _undo_creates(store: HubSpotStore, kind: str, first_new_id: int) -> None:
    """A batch create that fails part-way leaves nothing behind: HubSpot validates a batch as a whole."""
    table = store.tables[kind]
    for record_id in [i for i in table.live if i >= first_new_id]:
        store.archive(kind, table.records[record_id])
        table.archived.remove(record_id)
        del table.records[record_id]
