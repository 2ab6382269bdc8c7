"""Portal metadata: pipelines and stages, owners, properties and property groups.

Owners carry what HubSpot's owners API has (id, email, names, userId, teams); it has no time zone or working
hours, so the dataset's owner time zones are not served here (see sandbox/README.md). Property create answers
201, a duplicate name 409 ``CONFLICT``; batch create answers 201, or 207 listing the duplicates.
"""

from __future__ import annotations

from typing import Any

from crm_sandbox.hubspot.errors import HubSpotError, error_body
from crm_sandbox.hubspot.http import body_json, handler, int_param, now_iso, object_type, ok, truthy
from crm_sandbox.hubspot.properties import (
    FIELD_TYPES,
    PROPERTY_TYPES,
    PropertyDef,
    PropertyGroup,
    PropertyOption,
)
from crm_sandbox.hubspot.render import iso_ms
from crm_sandbox.hubspot.store import HubSpotStore, Owner, Pipeline, Stage
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

__all__ = ["schema_routes"]


def stage_json(stage: Stage, created: str) -> dict[str, Any]:
    return {
        "id": stage.id,
        "label": stage.label,
        "displayOrder": stage.display_order,
        "metadata": {
            "isClosed": "true" if stage.is_closed else "false",
            "probability": repr(float(stage.probability)),
        },
        "archived": False,
        "createdAt": created,
        "updatedAt": created,
        "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
    }


def pipeline_json(pipeline: Pipeline) -> dict[str, Any]:
    created = iso_ms(pipeline.created_ms)
    return {
        "id": pipeline.id,
        "label": pipeline.label,
        "displayOrder": pipeline.display_order,
        "stages": [stage_json(s, created) for s in pipeline.stages],
        "archived": False,
        "createdAt": created,
        "updatedAt": created,
    }


def owner_json(owner: Owner) -> dict[str, Any]:
    stamp = iso_ms(owner.created_ms)
    return {
        "id": str(owner.id),
        "email": owner.email,
        "firstName": owner.first_name,
        "lastName": owner.last_name,
        "userId": None if owner.archived else owner.user_id,
        "userIdIncludingInactive": owner.user_id,
        "type": "PERSON",
        "teams": [{"id": team_id, "name": name, "primary": True} for team_id, name in owner.teams],
        "createdAt": stamp,
        "updatedAt": stamp,
        "archived": owner.archived,
    }


def _property_from(body: Any, kind: str, store: HubSpotStore) -> PropertyDef:
    if not isinstance(body, dict):
        raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON: expected a property definition")
    missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)]
    if missing:
        raise HubSpotError(400, "VALIDATION_ERROR", f"Missing required fields: {', '.join(missing)}")
    if body["type"] not in PROPERTY_TYPES or body["fieldType"] not in FIELD_TYPES:
        raise HubSpotError(
            400, "VALIDATION_ERROR", f"Invalid type/fieldType: {body['type']}/{body['fieldType']}"
        )
    if body["groupName"] not in store.groups[kind]:
        raise HubSpotError(400, "VALIDATION_ERROR", f"Property group {body['groupName']!r} does not exist.")
    options = tuple(
        PropertyOption(
            str(o.get("label", o.get("value"))),
            str(o["value"]),
            int(o.get("displayOrder", i)),
            bool(o.get("hidden", False)),
        )
        for i, o in enumerate(body.get("options") or [])
        if isinstance(o, dict) and "value" in o
    )
    stamp = now_iso(store)
    return PropertyDef(
        name=str(body["name"]),
        label=str(body["label"]),
        type=str(body["type"]),
        field_type=str(body["fieldType"]),
        group_name=str(body["groupName"]),
        description=str(body.get("description") or ""),
        options=options,
        display_order=int(body.get("displayOrder", -1)),
        hubspot_defined=False,
        has_unique_value=bool(body.get("hasUniqueValue", False)),
        hidden=bool(body.get("hidden", False)),
        form_field=bool(body.get("formField", False)),
        created_at=stamp,
        updated_at=stamp,
    )


def _conflict(name: str) -> HubSpotError:
    return HubSpotError(
        409, "CONFLICT", f"Property named '{name}' already exists.", subCategory="Property.ALREADY_EXISTS"
    )


def schema_routes(store: HubSpotStore) -> list[BaseRoute]:
    """The routes, bound to ``store``."""

    def pipeline_of(request: Request) -> Pipeline:
        if object_type(request) != "deals":
            raise HubSpotError(404, "OBJECT_NOT_FOUND", "No pipelines for this object type in the sandbox")
        found = store.pipelines.get(str(request.path_params["pipelineId"]))
        if found is None:
            raise HubSpotError(
                404, "OBJECT_NOT_FOUND", f"Unable to find pipeline {request.path_params['pipelineId']}"
            )
        return found

    @handler
    async def pipelines(request: Request) -> Response:
        kind = object_type(request)
        found = store.pipelines.values() if kind == "deals" else []
        return ok({"results": [pipeline_json(p) for p in found]})

    @handler
    async def pipeline(request: Request) -> Response:
        return ok(pipeline_json(pipeline_of(request)))

    @handler
    async def stages(request: Request) -> Response:
        found = pipeline_of(request)
        return ok({"results": [stage_json(s, iso_ms(found.created_ms)) for s in found.stages]})

    @handler
    async def stage(request: Request) -> Response:
        found = pipeline_of(request)
        for s in found.stages:
            if s.id == request.path_params["stageId"]:
                return ok(stage_json(s, iso_ms(found.created_ms)))
        raise HubSpotError(404, "OBJECT_NOT_FOUND", f"Unable to find stage {request.path_params['stageId']}")

    @handler
    async def owners(request: Request) -> Response:
        limit = int_param(request, "limit", 100, 500)
        after_raw = request.query_params.get("after", "")
        after = int(after_raw) if after_raw.isdigit() else 0
        email = request.query_params.get("email")
        archived = truthy(request, "archived")
        chosen = [
            o
            for o in sorted(store.owners.values(), key=lambda o: o.id)
            if o.id > after and o.archived == archived and (not email or o.email.lower() == email.lower())
        ]
        body: dict[str, Any] = {"results": [owner_json(o) for o in chosen[:limit]]}
        if len(chosen) > limit:
            last = chosen[limit - 1].id
            body["paging"] = {"next": {"after": str(last), "link": f"?after={last}"}}
        return ok(body)

    @handler
    async def owner(request: Request) -> Response:
        raw = str(request.path_params["ownerId"])
        by_user = request.query_params.get("idProperty") == "userId"
        archived = truthy(request, "archived")
        for o in store.owners.values():
            if (o.user_id if by_user else o.id) == (
                int(raw) if raw.isdigit() else None
            ) and o.archived == archived:
                return ok(owner_json(o))
        raise HubSpotError(404, "OBJECT_NOT_FOUND", f"Owner {raw} not found")

    def served(kind: str, definition: PropertyDef) -> dict[str, Any]:
        return store.property_with_options(kind, definition).to_json()

    @handler
    async def properties(request: Request) -> Response:
        kind = object_type(request)
        return ok({"results": [served(kind, p) for p in store.properties[kind].values()]})

    @handler
    async def property_by_name(request: Request) -> Response:
        kind = object_type(request)
        found = store.properties[kind].get(str(request.path_params["propertyName"]))
        if found is None:
            raise HubSpotError(
                404, "OBJECT_NOT_FOUND", f"Property {request.path_params['propertyName']} does not exist"
            )
        return ok(served(kind, found))

    @handler
    async def create_property(request: Request) -> Response:
        kind = object_type(request)
        definition = _property_from(await body_json(request), kind, store)
        if definition.name in store.properties[kind]:
            raise _conflict(definition.name)
        store.add_property(kind, definition)
        return ok(served(kind, definition), 201)

    @handler
    async def batch_create_properties(request: Request) -> Response:
        kind = object_type(request)
        started = now_iso(store)
        body = await body_json(request)
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list):
            raise HubSpotError(400, "VALIDATION_ERROR", 'Invalid input JSON: expected {"inputs": [...]}')
        definitions = [_property_from(item, kind, store) for item in inputs]
        results, errors = [], []
        for definition in definitions:
            if definition.name in store.properties[kind]:
                error = error_body(
                    "CONFLICT",
                    f"Property named '{definition.name}' already exists.",
                    context={"name": [definition.name]},
                )
                del error["correlationId"]
                errors.append(error)
                continue
            store.add_property(kind, definition)
            results.append(served(kind, definition))
        payload: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": now_iso(store),
        }
        if errors:
            payload.update(numErrors=len(errors), errors=errors)
            return ok(payload, 207)
        return ok(payload, 201)

    @handler
    async def batch_read_properties(request: Request) -> Response:
        kind = object_type(request)
        body = await body_json(request)
        names = [str(i.get("name")) for i in (body or {}).get("inputs", []) if isinstance(i, dict)]
        found = [served(kind, store.properties[kind][n]) for n in names if n in store.properties[kind]]
        return ok(
            {
                "status": "COMPLETE",
                "results": found,
                "startedAt": now_iso(store),
                "completedAt": now_iso(store),
            }
        )

    @handler
    async def groups(request: Request) -> Response:
        kind = object_type(request)
        return ok({"results": [g.to_json() for g in store.groups[kind].values()]})

    @handler
    async def group_by_name(request: Request) -> Response:
        kind = object_type(request)
        found = store.groups[kind].get(str(request.path_params["groupName"]))
        if found is None:
            raise HubSpotError(
                404, "OBJECT_NOT_FOUND", f"Property group {request.path_params['groupName']} does not exist"
            )
        return ok(found.to_json())

    @handler
    async def create_group(request: Request) -> Response:
        kind = object_type(request)
        body = await body_json(request)
        if not isinstance(body, dict) or not body.get("name") or not body.get("label"):
            raise HubSpotError(400, "VALIDATION_ERROR", "A property group needs name and label")
        name = str(body["name"])
        if name in store.groups[kind]:
            raise HubSpotError(409, "CONFLICT", f"Property group named '{name}' already exists.")
        group = PropertyGroup(name, str(body["label"]), int(body.get("displayOrder", -1)))
        store.groups[kind][name] = group
        return ok(group.to_json(), 201)

    base = "/crm/v3/properties/{objectType}"
    pipes = "/crm/v3/pipelines/{objectType}"
    return [
        Route(pipes, pipelines, methods=["GET"]),
        Route(pipes + "/{pipelineId}", pipeline, methods=["GET"]),
        Route(pipes + "/{pipelineId}/stages", stages, methods=["GET"]),
        Route(pipes + "/{pipelineId}/stages/{stageId}", stage, methods=["GET"]),
        Route("/crm/v3/owners/", owners, methods=["GET"]),
        Route("/crm/v3/owners", owners, methods=["GET"]),
        Route("/crm/v3/owners/{ownerId}", owner, methods=["GET"]),
        Route(f"{base}/groups", groups, methods=["GET"]),
        Route(f"{base}/groups", create_group, methods=["POST"]),
        Route(base + "/groups/{groupName}", group_by_name, methods=["GET"]),
        Route(f"{base}/batch/create", batch_create_properties, methods=["POST"]),
        Route(f"{base}/batch/read", batch_read_properties, methods=["POST"]),
        Route(base, properties, methods=["GET"]),
        Route(base, create_property, methods=["POST"]),
        Route(base + "/{propertyName}", property_by_name, methods=["GET"]),
    ]
