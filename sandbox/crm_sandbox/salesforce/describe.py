"""describe and sobjects-list bodies, shaped as ``GET sobjects/`` and ``sobjects/{Type}/describe`` answer."""

from __future__ import annotations

from typing import Any

from crm_sandbox.salesforce.schema import NUMBER_TYPES, SOAP_TYPES, FieldDef, ObjectDef, Schema


def _urls(obj: ObjectDef, version: str) -> dict[str, str]:
    base = f"/services/data/v{version}/sobjects/{obj.name}"
    return {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}


def object_summary(obj: ObjectDef, version: str) -> dict[str, Any]:
    return {
        "name": obj.name,
        "label": obj.label,
        "labelPlural": obj.label_plural,
        "keyPrefix": obj.key_prefix,
        "custom": False,
        "queryable": True,
        "retrieveable": True,
        "searchable": obj.name not in ("OpportunityStage", "CampaignMemberStatus"),
        "createable": obj.createable,
        "updateable": obj.updateable,
        "deletable": obj.deletable,
        "layoutable": obj.createable,
        "replicateable": True,
        "triggerable": obj.createable,
        "urls": _urls(obj, version),
    }


def sobjects_list(schema: Schema, version: str) -> dict[str, Any]:
    objects = sorted(schema.objects.values(), key=lambda o: o.name)
    return {
        "encoding": "UTF-8",
        "maxBatchSize": 200,
        "sobjects": [object_summary(o, version) for o in objects],
    }


def field_describe(fd: FieldDef) -> dict[str, Any]:
    t = fd.type
    filterable = t != "textarea"
    return {
        "name": fd.name,
        "label": fd.label,
        "type": t,
        "soapType": SOAP_TYPES.get(t, "xsd:string"),
        "length": fd.length,
        "byteLength": fd.length * 3,
        "precision": 18 if t in ("currency", "double", "percent") else 0,
        "scale": 2 if t in ("currency", "double", "percent") else 0,
        "digits": 9 if t == "int" else 0,
        "custom": fd.custom,
        "calculated": False,
        "autoNumber": False,
        "caseSensitive": False,
        "createable": fd.createable,
        "updateable": fd.updateable,
        "nillable": fd.nillable,
        "defaultedOnCreate": fd.default_value is not None or t == "boolean" or fd.name == "OwnerId",
        "defaultValue": fd.default_value
        if fd.default_value is not None
        else (False if t == "boolean" else None),
        "externalId": fd.external_id,
        "idLookup": fd.external_id or t == "id",
        "unique": fd.unique,
        "filterable": filterable,
        "sortable": filterable,
        "groupable": t not in NUMBER_TYPES and t not in ("textarea", "datetime"),
        "restrictedPicklist": fd.restricted,
        "picklistValues": [
            {
                "active": True,
                "defaultValue": value == fd.default_value,
                "label": value,
                "validFor": None,
                "value": value,
            }
            for value in fd.picklist
        ],
        "referenceTo": list(fd.reference_to),
        "relationshipName": fd.relationship_name,
        "polymorphicForeignKey": fd.polymorphic,
        "htmlFormatted": False,
        "nameField": fd.name == "Name",
    }


def object_describe(obj: ObjectDef, version: str) -> dict[str, Any]:
    return {
        **object_summary(obj, version),
        "fields": [field_describe(f) for f in obj.fields.values()],
        "childRelationships": [
            {
                "childSObject": rel.child,
                "field": rel.field,
                "relationshipName": rel.name,
                "cascadeDelete": rel.child in ("OpportunityContactRole", "CampaignMember"),
                "deprecatedAndHidden": False,
                "restrictedDelete": False,
            }
            for rel in obj.children.values()
        ],
        "recordTypeInfos": [],
        "supportedScopes": [{"label": "All", "name": "everything"}, {"label": "Mine", "name": "mine"}],
    }
