"""``sobjects``: list, describe, create, read, update, delete, external-id get/upsert, updated/deleted."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import unquote

from crm_sandbox.salesforce import dml
from crm_sandbox.salesforce.describe import object_describe, object_summary, sobjects_list
from crm_sandbox.salesforce.errors import ApiError, dml_error, not_found
from crm_sandbox.salesforce.http import Call, SfJSON, no_content
from crm_sandbox.salesforce.schema import ObjectDef
from crm_sandbox.salesforce.store import Record
from crm_sandbox.salesforce.values import format_datetime, from_json, parse_datetime, to_json
from starlette.responses import Response

UPSERT_BODY_SINCE = 46  # from this API version an upsert that updates answers 200 with a body (else 204)


def object_of(call: Call) -> ObjectDef:
    name = call.params["sobject"]
    obj = call.org.schema.get(name)
    if obj is None:
        raise not_found("The requested resource does not exist")
    return obj


def _body(call: Call) -> dict[str, Any]:
    if not isinstance(call.body, dict):
        raise ApiError(
            400, "JSON_PARSER_ERROR", "Cannot deserialize instance of sObject from the request body"
        )
    return call.body


def list_sobjects(call: Call) -> Response:
    return SfJSON(sobjects_list(call.org.schema, call.version))


def describe(call: Call) -> Response:
    return SfJSON(object_describe(object_of(call), call.version))


def sobject_root(call: Call) -> Response:
    obj = object_of(call)
    if call.request.method == "GET":
        return SfJSON({"objectDescribe": object_summary(obj, call.version), "recentItems": []})
    body = _body(call)
    org = call.org
    with org.store.lock:
        org.maybe_lock_fault(obj.name)
        record = dml.create(org.store, obj, body, call.user_id)
    return SfJSON({"id": record["Id"], "success": True, "errors": []}, status_code=201)


def render_record(obj: ObjectDef, rec: Record, version: str, fields: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "attributes": {"type": obj.name, "url": f"/services/data/v{version}/sobjects/{obj.name}/{rec['Id']}"}
    }
    if fields:
        for name in (f.strip() for f in fields.split(",")):
            fd = obj.field(name)
            if fd is None:
                raise ApiError(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {obj.name}")
            out[fd.name] = to_json(rec.get(fd.name))
        return out
    for fd in obj.fields.values():
        out[fd.name] = to_json(rec.get(fd.name))
    return out


def record(call: Call) -> Response:
    obj = object_of(call)
    org = call.org
    rid = call.params["record_id"]
    method = call.request.method
    with org.store.lock:
        if method == "GET":
            _, rec = dml.live_record(org.store, obj, rid)
            return SfJSON(render_record(obj, rec, call.version, call.query_param("fields")))
        org.maybe_lock_fault(rid)
        if method == "PATCH":
            dml.update(org.store, obj, rid, _body(call), call.user_id)
        else:
            dml.delete(org.store, obj, rid, call.user_id)
    return no_content()


def _external_matches(call: Call, obj: ObjectDef) -> tuple[str, list[Record]]:
    field_name = call.params["field"]
    value = unquote(call.params["value"])
    fd = obj.field(field_name)
    if fd is None or not (fd.external_id or fd.name == "Id"):
        raise not_found(f"Provided external ID field does not exist or is not accessible: {field_name}")
    if fd.name == "Id":
        try:
            _, rec = dml.live_record(call.org.store, obj, value)
        except ApiError:
            return fd.name, []
        return fd.name, [rec]
    table = call.org.store.table(obj.name)
    try:
        typed = from_json(fd, value)
    except ValueError:
        return fd.name, []
    ids = sorted(table.ids_where(fd.name, typed))
    return fd.name, [table.rows[r] for r in ids if not table.rows[r].get("IsDeleted")]


def by_external_id(call: Call) -> Response:
    obj = object_of(call)
    org = call.org
    method = call.request.method
    with org.store.lock:
        field_name, matches = _external_matches(call, obj)
        if len(matches) > 1:
            urls = [f"/services/data/v{call.version}/sobjects/{obj.name}/{m['Id']}" for m in matches]
            return SfJSON(urls, status_code=300)
        if method == "GET":
            if not matches:
                raise not_found()
            return SfJSON(render_record(obj, matches[0], call.version, call.query_param("fields")))
        if method == "DELETE":
            if not matches:
                raise not_found()
            org.maybe_lock_fault(matches[0]["Id"])
            dml.delete(org.store, obj, matches[0]["Id"], call.user_id)
            return no_content()
        body = dict(_body(call))
        if body.get(field_name) not in (None, unquote(call.params["value"])) and field_name != "Id":
            raise dml_error(
                "INVALID_FIELD",
                f"The value of {field_name} in the body doesn't match the value in the URL",
                [field_name],
            )
        org.maybe_lock_fault(matches[0]["Id"] if matches else obj.name)
        if matches:
            body.pop(field_name, None)
            dml.update(org.store, obj, matches[0]["Id"], body, call.user_id)
            if int(call.version.split(".")[0]) < UPSERT_BODY_SINCE:
                return no_content()
            return SfJSON({"id": matches[0]["Id"], "success": True, "errors": [], "created": False})
        if call.query_param("updateOnly") == "true":
            raise not_found()
        if field_name != "Id":
            body[field_name] = unquote(call.params["value"])
        created = dml.create(org.store, obj, body, call.user_id)
    return SfJSON({"id": created["Id"], "success": True, "errors": [], "created": True}, status_code=201)


def _window(call: Call) -> tuple[Any, Any]:
    start, end = call.query_param("start"), call.query_param("end")
    if not start or not end:
        raise ApiError(400, "MISSING_ARGUMENT", "start" if not start else "end")
    try:
        return parse_datetime(start), parse_datetime(end)
    except ValueError:
        raise ApiError(400, "INVALID_REPLICATION_DATE", f"unable to parse {start!r} / {end!r}") from None


def updated(call: Call) -> Response:
    obj = object_of(call)
    start, end = _window(call)
    org = call.org
    with org.store.lock:
        table = org.store.table(obj.name)
        ids = table.stamp_index("SystemModstamp").range(start, True, end, False)
        live = sorted(r for r in ids if not table.rows[r].get("IsDeleted"))
    covered = min(end, org.clock.now()).replace(second=0, microsecond=0)
    return SfJSON({"ids": live, "latestDateCovered": format_datetime(covered)})


def deleted(call: Call) -> Response:
    obj = object_of(call)
    start, end = _window(call)
    org = call.org
    with org.store.lock:
        table = org.store.table(obj.name)
        ids = table.stamp_index("SystemModstamp").range(start, True, end, False)
        gone = [table.rows[r] for r in ids if table.rows[r].get("IsDeleted")]
    now = org.clock.now()
    return SfJSON(
        {
            "deletedRecords": [
                {"id": r["Id"], "deletedDate": format_datetime(r["SystemModstamp"])} for r in gone
            ],
            "earliestDateAvailable": format_datetime(
                (now - timedelta(days=15)).replace(second=0, microsecond=0)
            ),
            "latestDateCovered": format_datetime(min(end, now).replace(second=0, microsecond=0)),
        }
    )
