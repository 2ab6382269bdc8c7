"""Request parsing and response shaping shared by the route modules.

Query parameters arrive as the SDK sends them (repeated ``properties=a&properties=b``, booleans as ``True``)
or as the docs allow (comma-separated, any case); both are accepted. Handlers raise ``HubSpotError`` and the
``handler`` wrapper answers with HubSpot's error body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

from crm_sandbox.hubspot.catalog import DEFAULT_PROPERTIES, SINGULAR, resolve_object_type
from crm_sandbox.hubspot.errors import HubSpotError, error_response, json_response, loads
from crm_sandbox.hubspot.records import Record
from crm_sandbox.hubspot.render import iso_ms
from crm_sandbox.hubspot.store import HubSpotStore
from starlette.requests import Request
from starlette.responses import Response

__all__ = [
    "body_json",
    "handler",
    "int_param",
    "list_param",
    "now_iso",
    "object_type",
    "ok",
    "record_json",
    "records_json",
    "truthy",
]

Handler = Callable[[Request], Awaitable[Response]]


def handler(func: Handler) -> Handler:
    """Turn ``HubSpotError`` into HubSpot's error response, and a body of the wrong shape into its 400.

    A JSON body whose parts have the wrong types (a number where an object belongs, ...) surfaces as
    ``AttributeError``/``TypeError``/``KeyError``/``ValueError`` deep in a handler; HubSpot answers such input
    with 400 ``VALIDATION_ERROR``, so the sandbox does too rather than a bare 500.
    """

    @wraps(func)
    async def wrapped(request: Request) -> Response:
        try:
            return await func(request)
        except HubSpotError as error:
            return error_response(error)
        except (AttributeError, TypeError, KeyError, ValueError) as error:
            message = f"Invalid input JSON: {type(error).__name__}: {error}"
            return error_response(HubSpotError(400, "VALIDATION_ERROR", message))

    return wrapped


def ok(body: Any, status: int = 200) -> Response:
    return json_response(body, status)


def list_param(request: Request, name: str) -> list[str]:
    """A multi-valued query parameter, repeated or comma-separated."""
    values: list[str] = []
    for raw in request.query_params.getlist(name):
        values.extend(part for part in raw.split(",") if part)
    return values


def truthy(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").strip().lower() == "true"


def int_param(request: Request, name: str, default: int, maximum: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HubSpotError(400, "VALIDATION_ERROR", f"Invalid {name} value.") from None
    if value < 1 or (maximum is not None and value > maximum):
        raise HubSpotError(
            400,
            "VALIDATION_ERROR",
            f"Invalid {name} value.",
            errors=[
                {
                    "code": "400",
                    "in": "query",
                    "message": f"Invalid {name} value.",
                    "subCategory": "INVALID_PARAMETER",
                    "context": {name: [f"Must be less than or equal to {maximum}"]},
                }
            ],
        )
    return value


async def body_json(request: Request) -> Any:
    raw = await request.body()
    try:
        return loads(raw) if raw else None
    except ValueError:
        raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON on line 1: malformed JSON") from None


def object_type(request: Request, param: str = "objectType") -> str:
    """The plural object type a path names, or 400 as HubSpot answers an unknown type."""
    raw = str(request.path_params[param])
    kind = resolve_object_type(raw)
    if kind is None:
        raise HubSpotError(400, "VALIDATION_ERROR", f"Unable to infer object type from: {raw}")
    return kind


def now_iso(store: HubSpotStore) -> str:
    return iso_ms(store.now_ms())


def record_json(
    store: HubSpotStore,
    kind: str,
    record: Record,
    names: list[str] | None = None,
    *,
    history: list[str] | None = None,
    associations: list[str] | None = None,
    always: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A ``SimplePublicObject`` (with associations when asked): requested properties, ``null`` when unset."""
    table = store.tables[kind]
    definitions = store.properties[kind]
    stored = table.props(record)
    updated = iso_ms(record.updated_ms)
    modified, created = table.modified_property, table.created_property
    props: dict[str, str | None] = {}
    for name in _plan(store, kind, tuple(names) if names else None, always):
        if name == modified:
            props[name] = updated
        elif name == created:
            props[name] = iso_ms(record.created_ms)
        elif name == "hs_object_id":
            props[name] = str(record.id)
        else:
            props[name] = stored.get(name)
    body: dict[str, Any] = {
        "id": str(record.id),
        "properties": props,
        "createdAt": iso_ms(record.created_ms),
        "updatedAt": updated,
        "archived": record.archived,
    }
    if record.archived and record.archived_ms is not None:
        body["archivedAt"] = iso_ms(record.archived_ms)
    if history:
        body["propertiesWithHistory"] = {
            name: [{"value": value, "timestamp": iso_ms(record.updated_ms), "sourceType": "API"}]
            for name in history
            if name in definitions and (value := table.value(record, name)) is not None
        }
    if associations:
        linked: dict[str, Any] = {}
        for raw in associations:
            to_kind = resolve_object_type(raw)
            if to_kind is None:
                continue
            rows = [
                {"id": str(to_id), "type": association_name(store, type_id)}
                for to_id, type_ids in sorted(store.live_targets(kind, to_kind, record.id).items())
                for type_id in type_ids
            ]
            if rows:
                linked[raw] = {"results": rows}
        if linked:
            body["associations"] = linked
    return body


def records_json(
    store: HubSpotStore,
    kind: str,
    records: list[Record],
    names: list[str] | None = None,
    *,
    always: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """``record_json`` for many records without history or associations: the batch-read and search path.

    One flat loop with locals, because it runs for every record of every page. Each record keeps the bodies
    of its last two reads (``Record.json_cache``, per property list: a sync worker reads deals with one list
    through search and another through batch read); records are never changed in place, so a cached body is
    exact until the record is replaced by a write. The bodies are shared: do not modify.
    """
    table = store.tables[kind]
    modified, created = table.modified_property, table.created_property
    plan = _plan(store, kind, tuple(names) if names else None, always)
    plain = [n for n in plan if n not in (modified, created, "hs_object_id")]
    want_modified, want_created, want_id = modified in plan, created in plan, "hs_object_id" in plan
    props_of = table.props
    result: list[dict[str, Any]] = []
    for record in records:
        cached = record.json_cache
        if cached is not None:
            if cached[0] is plan:
                result.append(cached[1])  # shared: callers serialise it and never change it
                continue
            if cached[2] is plan:
                result.append(cached[3])
                continue
        get = props_of(record).get
        updated = iso_ms(record.updated_ms)
        created_at = iso_ms(record.created_ms)
        record_id = str(record.id)
        props: dict[str, str | None] = {name: get(name) for name in plain}
        if want_modified:
            props[modified] = updated
        if want_created:
            props[created] = created_at
        if want_id:
            props["hs_object_id"] = record_id
        body: dict[str, Any] = {
            "id": record_id,
            "properties": props,
            "createdAt": created_at,
            "updatedAt": updated,
            "archived": record.archived,
        }
        if record.archived and record.archived_ms is not None:
            body["archivedAt"] = iso_ms(record.archived_ms)
        record.json_cache = (plan, body, *cached[:2]) if cached is not None else (plan, body, None, None)
        result.append(body)
    return result


_PLANS: dict[tuple[str, int, tuple[str, ...] | None, tuple[str, ...]], tuple[str, ...]] = {}


def _plan(
    store: HubSpotStore, kind: str, names: tuple[str, ...] | None, always: tuple[str, ...]
) -> tuple[str, ...]:
    """The property names a read returns, in order and once each: cached, as reads repeat the same lists."""
    key = (kind, store.schema_version, names, always)
    plan = _PLANS.get(key)
    if plan is None:
        definitions = store.properties[kind]
        wanted = names if names else DEFAULT_PROPERTIES[kind]
        plan = tuple(n for n in dict.fromkeys((*wanted, *always)) if n in definitions)
        if len(_PLANS) > 4096:
            _PLANS.clear()
        _PLANS[key] = plan
    return plan


def association_name(store: HubSpotStore, type_id: int) -> str:
    """The v3 association type name: ``deal_to_contact``, ``deal_to_company_unlabeled``, or a label's name."""
    t = store.associations.types.get(type_id)
    if t is None:
        return str(type_id)
    base = f"{SINGULAR[t.from_type]}_to_{SINGULAR[t.to_type]}"
    if t.category == "USER_DEFINED":
        return t.name or (t.label or base).lower().replace(" ", "_")
    if t.label is None and any(
        o.label == "Primary" for o in store.associations.types_between(t.from_type, t.to_type)
    ):
        return f"{base}_unlabeled"
    return base
