"""``composite/sobjects``: create (POST), update (PATCH) and delete (DELETE ?ids=) up to 200 records.

A well-formed call always answers 200 with one SaveResult per record, in order: ``{"id", "success": true,
"errors": []}`` or ``{"success": false, "errors": [{"statusCode", "message", "fields"}]}`` (no id for a
failed create). With ``allOrNone`` any failure rolls every write back and the other records report
ALL_OR_NONE_OPERATION_ROLLED_BACK. More than 200 records is 400 EXCEEDED_ID_LIMIT for the whole call.
"""

from __future__ import annotations

from typing import Any

from crm_sandbox.salesforce import dml
from crm_sandbox.salesforce.errors import ApiError, dml_error
from crm_sandbox.salesforce.http import Call, SfJSON
from starlette.responses import Response

MAX_RECORDS = 200
ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": (
        "Record rolled back because not all records were valid and the request was using AllOrNone header"
    ),
    "fields": [],
}


def _too_many() -> ApiError:
    return ApiError(
        400,
        "EXCEEDED_ID_LIMIT",
        f"record limit reached. cannot submit more than {MAX_RECORDS} records into this call",
    )


def collections(call: Call) -> Response:
    method = call.request.method
    if method == "DELETE":
        ids = [i for i in (call.query_param("ids") or "").split(",") if i]
        if not ids:
            raise ApiError(400, "MALFORMED_QUERY", "ids parameter is required")
        all_or_none = (call.query_param("allOrNone") or "false").lower() == "true"
        items: list[Any] = ids
    else:
        body = call.body
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise ApiError(400, "JSON_PARSER_ERROR", "Cannot deserialize the request: records is required")
        items = body["records"]
        all_or_none = bool(body.get("allOrNone", False))
    if len(items) > MAX_RECORDS:
        raise _too_many()
    org = call.org
    results: list[dict[str, Any]] = []
    with org.store.transaction() as rollback:
        for item in items:
            results.append(_one(call, method, item))
        failed = any(not r["success"] for r in results)
        if failed and all_or_none:
            rollback()
            for r in results:
                if r["success"]:
                    r["success"] = False
                    r["errors"] = [dict(ROLLED_BACK)]
                    if method == "POST":
                        r.pop("id", None)
    return SfJSON(results)


def _one(call: Call, method: str, item: Any) -> dict[str, Any]:
    known_id = item if isinstance(item, str) else None
    if isinstance(item, dict) and method == "PATCH":
        raw = item.get("id") or item.get("Id")
        known_id = raw if isinstance(raw, str) else None
    try:
        record_id = _apply(call, method, item)
    except ApiError as exc:
        result: dict[str, Any] = {"success": False, "errors": [exc.save_error()]}
        if known_id is not None and method != "POST":
            result = {"id": known_id, **result}
        return result
    return {"id": record_id, "success": True, "errors": []}


def _apply(call: Call, method: str, item: Any) -> str:
    """Write one record; return its id or raise the ``ApiError`` its SaveResult reports."""
    org = call.org
    if method == "DELETE":
        record_id = str(item)
        obj = org.schema.object_of_id(record_id)
        if obj is None or len(record_id) not in (15, 18):
            raise dml_error("MALFORMED_ID", f"malformed id {record_id}")
        org.maybe_lock_fault(record_id)
        dml.delete(org.store, obj, record_id, call.user_id)
        return record_id
    if not isinstance(item, dict):
        raise dml_error("JSON_PARSER_ERROR", "each record must be a JSON object")
    attributes = item.get("attributes")
    type_name = attributes.get("type") if isinstance(attributes, dict) else None
    obj = org.schema.get(type_name) if isinstance(type_name, str) else None
    if obj is None:
        raise dml_error("INVALID_TYPE", "Must send a concrete entity type.")
    body = {k: v for k, v in item.items() if k != "attributes"}
    if method == "POST":
        org.maybe_lock_fault(obj.name)
        return str(dml.create(org.store, obj, body, call.user_id)["Id"])
    record_id = body.pop("id", None) or body.pop("Id", None)
    if not isinstance(record_id, str):
        raise dml_error("MISSING_ARGUMENT", "Id not specified in an update call")
    org.maybe_lock_fault(record_id)
    dml.update(org.store, obj, record_id, body, call.user_id)
    return record_id
