"""Associations v4: batch read with per-id paging, create (labelled or default), archive, label definitions.

Batch read takes up to 1,000 inputs; each id's associations come in pages of ``page_size`` with
``paging.next.after`` only when that id has more, and ``{"id", "after"}`` continues it. Ids without
associations are left out of ``results``; ids that do not exist give 207 ``OBJECT_NOT_FOUND``. ``toObjectId``
is a number on the wire, ``label`` is ``null`` for unlabeled types.
"""

from __future__ import annotations

import base64
from dataclasses import replace
from typing import Any

from crm_sandbox.hubspot.catalog import OBJECT_TYPE_IDS
from crm_sandbox.hubspot.errors import HubSpotError, error_body
from crm_sandbox.hubspot.http import body_json, handler, int_param, now_iso, object_type, ok
from crm_sandbox.hubspot.store import HubSpotStore
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

__all__ = ["association_routes"]

BATCH_READ_MAX = 1000
BATCH_WRITE_MAX = 100


def _cursor(to_id: int) -> str:
    return base64.urlsafe_b64encode(str(to_id).encode()).decode().rstrip("=")


def _uncursor(after: str | None) -> int:
    if not after:
        return -1
    try:
        return int(base64.urlsafe_b64decode(after + "=" * (-len(after) % 4)).decode())
    except ValueError:
        raise HubSpotError(400, "VALIDATION_ERROR", f"Invalid after cursor: {after}") from None


def association_routes(store: HubSpotStore, page_size: int = 500) -> list[BaseRoute]:
    """The routes, bound to ``store``; ``page_size`` is the per-id page of batch read."""
    assoc = store.associations

    def type_json(type_id: int) -> dict[str, Any]:
        t = assoc.types[type_id]
        return {"category": t.category, "typeId": t.type_id, "label": t.label}

    def page_of(
        from_kind: str, to_kind: str, from_id: int, after: int, limit: int
    ) -> tuple[list[dict[str, Any]], int | None]:
        targets = sorted(store.live_targets(from_kind, to_kind, from_id).items())
        remaining = [(i, t) for i, t in targets if i > after]
        chosen = remaining[:limit]
        rows = [
            {"toObjectId": i, "associationTypes": [type_json(x) for x in t if x in assoc.types]}
            for i, t in chosen
        ]
        return rows, (chosen[-1][0] if len(remaining) > limit else None)

    def exists(kind: str, raw_id: str) -> bool:
        return raw_id.isdigit() and store.tables[kind].get(int(raw_id)) is not None

    def inputs_of(body: Any, maximum: int) -> list[Any]:
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list):
            raise HubSpotError(400, "VALIDATION_ERROR", 'Invalid input JSON: expected {"inputs": [...]}')
        if len(inputs) > maximum:
            raise HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"Too many inputs: {len(inputs)}. The maximum is {maximum} inputs per batch.",
            )
        return inputs

    def specs(raw: Any, from_kind: str, to_kind: str) -> list[int]:
        if not isinstance(raw, list):
            raise HubSpotError(
                400, "VALIDATION_ERROR", "Invalid input JSON: expected a list of association specs"
            )
        ids = [s.get("associationTypeId") for s in raw if isinstance(s, dict)]
        if not ids or not all(isinstance(i, int) for i in ids):
            raise HubSpotError(
                400, "VALIDATION_ERROR", "Each association spec needs an integer associationTypeId"
            )
        return [int(i) for i in ids if isinstance(i, int)]

    def pair_json(
        from_kind: str, from_id: int, to_kind: str, to_id: int, type_ids: tuple[int, ...]
    ) -> dict[str, Any]:
        labels = [assoc.types[i].label for i in type_ids if i in assoc.types and assoc.types[i].label]
        return {
            "fromObjectTypeId": OBJECT_TYPE_IDS[from_kind],
            "fromObjectId": from_id,
            "toObjectTypeId": OBJECT_TYPE_IDS[to_kind],
            "toObjectId": to_id,
            "labels": labels,
        }

    def not_found_error(ids: list[str], key: str = "fromObjectId") -> dict[str, Any]:
        body = error_body(
            "OBJECT_NOT_FOUND", "Some objects were not found or have been deleted.", context={key: ids}
        )
        del body["correlationId"]
        return body

    @handler
    async def batch_read(request: Request) -> Response:
        from_kind, to_kind = object_type(request, "fromObjectType"), object_type(request, "toObjectType")
        started = now_iso(store)
        inputs = inputs_of(await body_json(request), BATCH_READ_MAX)
        results, missing = [], []
        for item in inputs:
            raw_id = str(item.get("id", "")) if isinstance(item, dict) else ""
            if not exists(from_kind, raw_id):
                missing.append(raw_id)
                continue
            rows, more = page_of(from_kind, to_kind, int(raw_id), _uncursor(item.get("after")), page_size)
            if not rows:
                continue
            result: dict[str, Any] = {"from": {"id": raw_id}, "to": rows}
            if more is not None:
                result["paging"] = {"next": {"after": _cursor(more), "link": None}}
            results.append(result)
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": now_iso(store),
        }
        if missing:
            body["numErrors"] = 1
            body["errors"] = [not_found_error(missing)]
            return ok(body, 207)
        return ok(body)

    @handler
    async def get_page(request: Request) -> Response:
        from_kind, to_kind = object_type(request), object_type(request, "toObjectType")
        raw_id = str(request.path_params["objectId"])
        if not exists(from_kind, raw_id):
            raise HubSpotError(404, "OBJECT_NOT_FOUND", f"No {from_kind} with id {raw_id}")
        limit = int_param(request, "limit", 500, 500)
        rows, more = page_of(
            from_kind, to_kind, int(raw_id), _uncursor(request.query_params.get("after")), limit
        )
        body: dict[str, Any] = {"results": rows}
        if more is not None:
            body["paging"] = {"next": {"after": _cursor(more), "link": None}}
        return ok(body)

    def check_pair(from_kind: str, from_id: str, to_kind: str, to_id: str) -> None:
        bad = [i for k, i in ((from_kind, from_id), (to_kind, to_id)) if not exists(k, i)]
        if bad:
            raise HubSpotError(
                404, "OBJECT_NOT_FOUND", f"Objects not found: {', '.join(bad)}", context={"ids": bad}
            )

    @handler
    async def create(request: Request) -> Response:
        from_kind, to_kind = object_type(request), object_type(request, "toObjectType")
        from_id, to_id = str(request.path_params["objectId"]), str(request.path_params["toObjectId"])
        type_ids = specs(await body_json(request), from_kind, to_kind)
        check_pair(from_kind, from_id, to_kind, to_id)
        result = store.associate(from_kind, int(from_id), to_kind, int(to_id), type_ids)
        return ok(pair_json(from_kind, int(from_id), to_kind, int(to_id), result), 201)

    def default_result(from_kind: str, from_id: str, to_kind: str, to_id: str) -> list[dict[str, Any]]:
        forward, backward = assoc.default_type(from_kind, to_kind), assoc.default_type(to_kind, from_kind)
        if forward is None or backward is None:
            raise HubSpotError(
                400, "VALIDATION_ERROR", f"No default association between {from_kind} and {to_kind}"
            )
        store.associate(from_kind, int(from_id), to_kind, int(to_id), [forward.type_id])
        return [
            {
                "from": {"id": from_id},
                "to": {"id": to_id},
                "associationSpec": {
                    "associationCategory": forward.category,
                    "associationTypeId": forward.type_id,
                },
            },
            {
                "from": {"id": to_id},
                "to": {"id": from_id},
                "associationSpec": {
                    "associationCategory": backward.category,
                    "associationTypeId": backward.type_id,
                },
            },
        ]

    @handler
    async def create_default(request: Request) -> Response:
        from_kind, to_kind = object_type(request, "fromObjectType"), object_type(request, "toObjectType")
        from_id, to_id = str(request.path_params["fromObjectId"]), str(request.path_params["toObjectId"])
        check_pair(from_kind, from_id, to_kind, to_id)
        started = now_iso(store)
        results = default_result(from_kind, from_id, to_kind, to_id)
        return ok(
            {"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": now_iso(store)}
        )

    @handler
    async def archive(request: Request) -> Response:
        from_kind, to_kind = object_type(request), object_type(request, "toObjectType")
        from_id, to_id = str(request.path_params["objectId"]), str(request.path_params["toObjectId"])
        if from_id.isdigit() and to_id.isdigit():
            store.dissociate(from_kind, int(from_id), to_kind, int(to_id), None)
        return Response(status_code=204)

    @handler
    async def batch_create(request: Request) -> Response:
        from_kind, to_kind = object_type(request, "fromObjectType"), object_type(request, "toObjectType")
        started = now_iso(store)
        results: list[dict[str, Any]] = []
        missing: list[str] = []
        for item in inputs_of(await body_json(request), BATCH_WRITE_MAX):
            from_id = str((item.get("from") or {}).get("id", ""))
            to_id = str((item.get("to") or {}).get("id", ""))
            type_ids = specs(item.get("types"), from_kind, to_kind)
            if not (exists(from_kind, from_id) and exists(to_kind, to_id)):
                missing.extend(i for k, i in ((from_kind, from_id), (to_kind, to_id)) if not exists(k, i))
                continue
            result = store.associate(from_kind, int(from_id), to_kind, int(to_id), type_ids)
            results.append(pair_json(from_kind, int(from_id), to_kind, int(to_id), result))
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": now_iso(store),
        }
        if missing:
            body["numErrors"] = 1
            body["errors"] = [not_found_error(missing, "ids")]
            return ok(body, 207)
        return ok(body, 201)

    @handler
    async def batch_default(request: Request) -> Response:
        from_kind, to_kind = object_type(request, "fromObjectType"), object_type(request, "toObjectType")
        started = now_iso(store)
        results: list[dict[str, Any]] = []
        for item in inputs_of(await body_json(request), BATCH_WRITE_MAX):
            from_id = str((item.get("from") or {}).get("id", ""))
            to_id = str((item.get("to") or {}).get("id", ""))
            check_pair(from_kind, from_id, to_kind, to_id)
            results.extend(default_result(from_kind, from_id, to_kind, to_id))
        return ok(
            {"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": now_iso(store)}
        )

    @handler
    async def batch_archive(request: Request) -> Response:
        from_kind, to_kind = object_type(request, "fromObjectType"), object_type(request, "toObjectType")
        for item in inputs_of(await body_json(request), BATCH_WRITE_MAX):
            from_id = str((item.get("from") or {}).get("id", ""))
            targets = item.get("to") or []
            for target in targets if isinstance(targets, list) else [targets]:
                to_id = str(target.get("id", "")) if isinstance(target, dict) else ""
                if from_id.isdigit() and to_id.isdigit():
                    store.dissociate(from_kind, int(from_id), to_kind, int(to_id), None)
        return Response(status_code=204)

    @handler
    async def batch_archive_labels(request: Request) -> Response:
        from_kind, to_kind = object_type(request, "fromObjectType"), object_type(request, "toObjectType")
        for item in inputs_of(await body_json(request), BATCH_WRITE_MAX):
            from_id = str((item.get("from") or {}).get("id", ""))
            to_id = str((item.get("to") or {}).get("id", ""))
            type_ids = specs(item.get("types"), from_kind, to_kind)
            if from_id.isdigit() and to_id.isdigit():
                store.dissociate(from_kind, int(from_id), to_kind, int(to_id), type_ids)
        return Response(status_code=204)

    @handler
    async def labels(request: Request) -> Response:
        from_kind, to_kind = object_type(request, "fromObjectType"), object_type(request, "toObjectType")
        return ok({"results": [type_json(t.type_id) for t in assoc.types_between(from_kind, to_kind)]})

    @handler
    async def create_label(request: Request) -> Response:
        from_kind, to_kind = object_type(request, "fromObjectType"), object_type(request, "toObjectType")
        body = await body_json(request)
        if not isinstance(body, dict) or not body.get("label") or not body.get("name"):
            raise HubSpotError(400, "VALIDATION_ERROR", "A label definition needs label and name")
        if any(t.label == body["label"] for t in assoc.types_between(from_kind, to_kind)):
            raise HubSpotError(
                409, "CONFLICT", f"An association label named '{body['label']}' already exists."
            )
        created = assoc.create_label(
            from_kind, to_kind, str(body["label"]), str(body["name"]), body.get("inverseLabel")
        )
        return ok({"results": [type_json(t.type_id) for t in created]})

    @handler
    async def update_label(request: Request) -> Response:
        body = await body_json(request)
        type_id = body.get("associationTypeId") if isinstance(body, dict) else None
        if (
            not isinstance(type_id, int)
            or type_id not in assoc.types
            or assoc.types[type_id].category != "USER_DEFINED"
        ):
            raise HubSpotError(404, "OBJECT_NOT_FOUND", f"No user-defined association type {type_id}")
        t = assoc.types[type_id]
        assoc.types[type_id] = replace(t, label=str(body.get("label") or t.label))
        if body.get("inverseLabel") and t.inverse_id in assoc.types:
            assoc.types[t.inverse_id] = replace(assoc.types[t.inverse_id], label=str(body["inverseLabel"]))
        return Response(status_code=204)

    @handler
    async def delete_label(request: Request) -> Response:
        raw = str(request.path_params["associationTypeId"])
        if (
            not raw.isdigit()
            or int(raw) not in assoc.types
            or assoc.types[int(raw)].category != "USER_DEFINED"
        ):
            raise HubSpotError(404, "OBJECT_NOT_FOUND", f"No user-defined association type {raw}")
        assoc.remove_label(int(raw))
        return Response(status_code=204)

    pair = "/crm/v4/associations/{fromObjectType}/{toObjectType}"
    obj = "/crm/v4/objects/{objectType}/{objectId}/associations"
    routes: list[BaseRoute] = [
        Route(f"{pair}/batch/read", batch_read, methods=["POST"]),
        Route(f"{pair}/batch/create", batch_create, methods=["POST"]),
        Route(f"{pair}/batch/associate/default", batch_default, methods=["POST"]),
        Route(f"{pair}/batch/archive", batch_archive, methods=["POST"]),
        Route(f"{pair}/batch/labels/archive", batch_archive_labels, methods=["POST"]),
        Route(
            "/crm/v4/objects/{fromObjectType}/{fromObjectId}/associations/default/{toObjectType}/{toObjectId}",
            create_default,
            methods=["PUT"],
        ),
        Route(obj + "/{toObjectType}", get_page, methods=["GET"]),
        Route(obj + "/{toObjectType}/{toObjectId}", create, methods=["PUT"]),
        Route(obj + "/{toObjectType}/{toObjectId}", archive, methods=["DELETE"]),
    ]
    for prefix in ("/crm/v4/associations", "/crm/associations/v4"):
        labels_path = prefix + "/{fromObjectType}/{toObjectType}/labels"
        routes += [
            Route(labels_path, labels, methods=["GET"]),
            Route(labels_path, create_label, methods=["POST"]),
            Route(labels_path, update_label, methods=["PUT"]),
            Route(labels_path + "/{associationTypeId}", delete_label, methods=["DELETE"]),
        ]
    return routes
